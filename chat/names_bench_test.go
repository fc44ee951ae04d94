package chat_test

import (
	"testing"

	"nochat/chat"
)

// BenchmarkNameKey measures the key of a mix of names as people type
// them: plain ASCII, accented, Cyrillic, Greek, full width and CJK.
func BenchmarkNameKey(b *testing.B) {
	names := []string{"Ann", "Bob Smith", "Zoë Ångström", "Вова", "ΑΝΝΑ", "Ａｎｎ", "李小龍", "b0b ❤\ufe0f"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := chat.NameKey(names[i%len(names)]); err != nil {
			b.Fatal(err)
		}
	}
}
