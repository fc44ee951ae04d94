package chat_test

import (
	"testing"

	"nochat/chat"
)

func TestCleanAvatar(t *testing.T) {
	for _, ok := range []string{
		"🤖", " 🧺 ", "🖨️", "❤", "👍🏽", "👩‍👩‍👧‍👦", "🇳🇿", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣", "#️⃣", "☕", "",
	} {
		if _, err := chat.CleanAvatar(ok); err != nil {
			t.Errorf("CleanAvatar(%q): %v, want it taken", ok, err)
		}
	}
	for _, bad := range []string{
		"A", "ab", "🤖🤖", "🤖 x", "1", "!", "🇳🇿🇳", "🇳", "\u200d", "🤖\u200d", "\u0301", "🤖\n🤖",
		"<script>", "\x00", "👩‍👩‍👧‍👦👩‍👩‍👧‍👦",
	} {
		if got, err := chat.CleanAvatar(bad); err == nil {
			t.Errorf("CleanAvatar(%q) = %q, want it refused", bad, got)
		}
	}
	if got, _ := chat.CleanAvatar("  🦊\t"); got != "🦊" {
		t.Errorf("CleanAvatar kept the spaces: %q", got)
	}
}
