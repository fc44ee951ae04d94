package chat

import "strings"

// errNameEmpty refuses an account without a name.
var errNameEmpty = &Refusal{"bad_name", "a name is needed"}

// errNameReserved refuses an account the name every nameless guest has.
var errNameReserved = &Refusal{"bad_name", "that name is what guests without a name are called: pick another"}

// AccountName cleans a name for an account as guests' names are cleaned,
// and returns it with its comparison key (NameKey). An account needs a
// name (a guest without one is DefaultUser), and may not have
// DefaultUser's, which would make every nameless guest look like it.
func (h *Hub) AccountName(name string) (display, key string, err error) {
	if strings.TrimSpace(name) == "" {
		return "", "", errNameEmpty
	}
	if display, err = cleanName(name, h.opts.MaxNameLen); err != nil {
		return "", "", err
	}
	if key, err = NameKey(display); err != nil {
		return "", "", err
	}
	if guest, err := NameKey(DefaultUser); err == nil && key == guest {
		return "", "", errNameReserved
	}
	return display, key, nil
}
