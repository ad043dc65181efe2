/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Counters for `porttrace serve`: allocations, failures and hold times per
 * namespace, kept in maps the daemon reads when it is scraped, so an
 * always-on monitor need not take every allocation through the ring buffer.
 * Included by common.h after struct sock_info, struct ns_key and the
 * filters; emit_at() calls count_event() for every event before it is
 * queued.
 */
#ifndef PORTTRACE_COUNTERS_H
#define PORTTRACE_COUNTERS_H

/* Allocations (err 0) and failures (err: the errno) per namespace,
 * protocol and way the port was asked for. */
struct ctr_key {
	__u32 netns;
	__u8 proto;
	__u8 via;
	__u8 err;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ctr_key);
	__type(value, __u64);
} ctr_events SEC(".maps");

/* Hold times per namespace and protocol. Bucket i counts holds of at most
 * 4^(i+5) ns (1.02 µs, 4.1 µs, ... 1100 s); the last, longer ones. */
#define HOLD_BUCKETS 17

struct hold_hist {
	__u64 count[HOLD_BUCKETS];
	__u64 sum_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ns_key);
	__type(value, struct hold_hist);
} ctr_holds SEC(".maps");

/* Set by the loader for serve mode: count_on keeps these counts (the trace
 * does not read them, and does not pay for them); failures_only, without
 * recording, leaves allocations and releases in the counts: only failures
 * reach user space. */
const volatile __u8 count_on = 0;
const volatile __u8 failures_only = 0;

static const struct hold_hist hold_zero;

/* Serve without a recording: allocations and releases are only counted,
 * so what only their events carry (the owner, addresses, the state a port
 * was left in) is not read for them: each read is a helper call on every
 * connect+close of the host. Not under a filter on what those reads give. */
static __always_inline bool counts_only(void)
{
	return count_on && failures_only && !f_npids && !f_ncomms && !f_family;
}

/* Set by the loader where counts_only() holds in the portable tier: counting
 * runs as few programs as it can, each run costing ~65 ns even when it
 * returns at once. sockops is left unattached (nine runs per loopback
 * connect+close) and the state tracepoint counts TCP connect() and listen()
 * as they begin (pick_begins in shared.h); tcp_destroy_sock is left out
 * (two runs) and a TCP port that outlives ->CLOSE is given back by the
 * close() that frees its socket (pt_sock_release). */
const volatile __u8 count_lean = 0;

/* Where count_lean is set: a TCP connect() or listen() on a socket without
 * a port, from CLOSE->SYN_SENT/LISTEN until the port goes back at ->CLOSE
 * (every TCP socket passes ->CLOSE before it is freed). Keyed by the
 * socket's address rather than kept in socket storage: creating socket
 * storage (two allocations charged to the memory cgroup) cost ~0.8 µs per
 * connect, more than the rest of counting together; an entry of this hash
 * costs a third of that. Not preallocated: it holds the host's connecting
 * and connected sockets, however many. */
struct pick {
	__u64 alloc_ns;
	__u32 netns;
	__u32 txhash; /* sk_txhash as the call began (connect_found_port) */
	__u8 via;
	__u8 settled; /* the search's outcome is counted */
	__u8 pad[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20); /* sized by the loader */
	__type(key, __u64);
	__type(value, struct pick);
} picks SEC(".maps");

/* Where the kernel has BPF atomics (5.12+; the loader probes, and loads
 * pt_state_count for pt_state), picks go first to a table indexed by a hash
 * of the socket's address, a slot claimed by compare-and-swap: two atomic
 * memory operations where the hash costs an insert and a delete, a quarter
 * of a microsecond per connect. A socket whose slot another live socket
 * holds goes to the hash. */
#define PICK_SLOTS (1 << 16)

struct pick_slot {
	__u64 sk; /* the socket's address; 0: free */
	struct pick p;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PICK_SLOTS); /* 1 unless pt_state_count is loaded */
	__type(key, __u32);
	__type(value, struct pick_slot);
} pick_slots SEC(".maps");

/* max_entries of pick_slots less one, set by the loader (a power of two). */
const volatile __u32 pick_slots_mask = PICK_SLOTS - 1;

/* Picks in the hash, kept by pt_state_count: while there are none, a
 * socket not in pick_slots is looked for no further. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} picks_hashed SEC(".maps");

/* The smallest k with v <= 2^k. */
static __always_inline __u32 log2_ceil(__u64 v)
{
	if (v <= 1)
		return 0;
	v--;
	__u32 r = 1;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1)
		r += 1;
	return r;
}

/* A port of netns held from alloc_ns to now went back. */
static __always_inline void hold_observe_ns(__u32 netns, __u8 proto, __u64 alloc_ns, __u64 now)
{
	if (now < alloc_ns)
		return;
	__u64 held = now - alloc_ns;
	__u32 k = log2_ceil(held);
	__u32 i = k <= 10 ? 0 : (k - 9) / 2;
	if (i > HOLD_BUCKETS - 1)
		i = HOLD_BUCKETS - 1;
	struct ns_key nk = {.netns = netns, .proto = proto};
	struct hold_hist *h = bpf_map_lookup_elem(&ctr_holds, &nk);
	if (!h) {
		bpf_map_update_elem(&ctr_holds, &nk, &hold_zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&ctr_holds, &nk);
		if (!h)
			return;
	}
	__sync_fetch_and_add(&h->count[i], 1);
	__sync_fetch_and_add(&h->sum_ns, held);
}

static __always_inline void hold_observe(const struct sock_info *si, __u64 now)
{
	if (si->via == PT_VIA_EXISTING)
		return; /* held since before the start: its length is unknown */
	hold_observe_ns(si->netns, si->proto, si->alloc_ns, now);
}

/* One allocation (err 0) or failure (err: the errno) more. */
static __always_inline void ctr_add(__u32 netns, __u8 proto, __u8 via, __u8 err)
{
	struct ctr_key k = {.netns = netns, .proto = proto, .via = via, .err = err};
	__u64 *v = bpf_map_lookup_elem(&ctr_events, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
	} else {
		__u64 one = 1;
		if (bpf_map_update_elem(&ctr_events, &k, &one, BPF_NOEXIST)) {
			v = bpf_map_lookup_elem(&ctr_events, &k);
			if (v)
				__sync_fetch_and_add(v, 1);
		}
	}
}

/* Count one event, at ts (0: now); false when it is not to be queued. */
static __always_inline bool count_event(__u8 kind, const struct sock_info *si, __s32 err, __u64 ts)
{
	if (!count_on)
		return kind == PT_KIND_FAIL || !failures_only;
	if (kind == PT_KIND_RELEASE) {
		hold_observe(si, ts ? ts : bpf_ktime_get_ns());
		return !failures_only;
	}
	ctr_add(si->netns, si->proto, si->via, kind == PT_KIND_FAIL ? (__u8)err : 0);
	return kind == PT_KIND_FAIL || !failures_only;
}

#endif
