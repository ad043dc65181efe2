package tracer

// CountInto makes serve's counting keep its picks in slots table slots
// (a power of two; 0: the hash alone, as where the kernel has no BPF
// atomics) until restore is called.
func CountInto(slots int) (restore func()) {
	oldSlots, oldNo := pickSlots, noAtomics
	if slots == 0 {
		noAtomics = true
	} else {
		pickSlots = slots
	}
	return func() { pickSlots, noAtomics = oldSlots, oldNo }
}
