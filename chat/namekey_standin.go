package chat

import "strings"

// NameKey is the comparison key of a cleaned display name: two names with
// one key mean one person.
//
// A stand-in, with the signature of the real one (PRECIS and confusables,
// chat/names.go on its own branch): case folding only. Delete this file
// when chat/names.go lands.
func NameKey(name string) (string, error) {
	k := strings.ToLower(strings.TrimSpace(name))
	if k == "" {
		return "", errBadName(32)
	}
	return k, nil
}
