package db

// ForgetMade makes w forget, as if its applier had not yet told it, that
// the log made room and account: the moment between a command's
// transaction and the applier's word, which a test cannot otherwise hold.
func ForgetMade[T any](w *ReplicatedWriter[T], room, account int64) {
	w.rooms.Delete(room)
	w.accounts.Delete(account)
}
