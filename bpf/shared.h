/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Hooks every tier attaches: tp_btf/inet_sock_set_state (owners of TCP
 * connect and listen, ends of holds), tp_btf/tcp_destroy_sock,
 * cgroup/sock_release; with the outcomes a port search leaves to be
 * settled late, and alloc_from_sk, which the tiers' hooks share.
 */
#ifndef PORTTRACE_SHARED_H
#define PORTTRACE_SHARED_H

/* The state a TCP socket left its port in when the full socket closed:
 * tcp_time_wait() hands the port to a mini-socket and then closes the full
 * one from FIN_WAIT2 (or CLOSING) without an error; a reset sets sk_err. */
static __always_inline __u8 left_state(struct sock *sk, int oldstate)
{
	if (oldstate != TCP_FIN_WAIT2 && oldstate != TCP_CLOSING && oldstate != TCP_TIME_WAIT)
		return TCP_CLOSE;
	if (BPF_CORE_READ(sk, sk_err))
		return TCP_CLOSE;
	if (oldstate != TCP_FIN_WAIT2)
		return TCP_TIME_WAIT;
	/* tcp_fin() marks SOCK_DONE before it moves on to TIME_WAIT */
	unsigned long fl = BPF_CORE_READ(sk, __sk_common.skc_flags);
	return (fl & (1UL << SOCK_DONE)) ? TCP_TIME_WAIT : TCP_FIN_WAIT2;
}

/* A TCP socket's port, also at a ->CLOSE: the state tracepoint runs after
 * tcp_set_state() gave an unbound socket's port back (inet_put_port() zeroes
 * skc_num), while inet_sport keeps it; it is 0 where no port was found. */
static __always_inline __u16 local_port(struct sock *sk)
{
	return bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

/* Whether a TCP connect() that began (CLOSE->SYN_SENT, where si->txhash was
 * taken) found its port: tcp_v4/v6_connect() set a new random sk_txhash
 * right after the search succeeds. The port alone cannot tell: a socket
 * connected again after connect(AF_UNSPEC) keeps its old inet_sport. */
static __always_inline bool connect_found_port(struct sock *sk, const struct sock_info *si)
{
	return BPF_CORE_READ(sk, sk_txhash) != si->txhash;
}

/* A TCP connect() or listen() found no port (or, bound, no free four-tuple):
 * seen in the call itself, so the current task is the caller. */
static __always_inline void pick_failed(struct sock *sk, __u16 sport, __u8 via, __s32 err)
{
	struct sock_info f = {};
	owner_from_current(&f);
	f.proto = IPPROTO_TCP;
	f.via = via;
	addrs_from_sk(sk, &f);
	f.port = sport;
	net_info_sk(sk, &f);
	if (who_wanted(&f))
		emit(PT_KIND_FAIL, &f, 0, err);
}

/* tcp_v4/v6_connect() failed before tcp_connect(). */
static __always_inline void connect_failed(struct sock *sk, __u16 sport)
{
	pick_failed(sk, sport, PT_VIA_CONNECT, EADDRNOTAVAIL);
}

/* The socket's port went back: the hold ends, and its release is queued,
 * unless only counts are wanted. */
static __always_inline void hold_released(struct sock *sk, struct sock_info *si, int oldstate)
{
	if (si->flags & SI_TRACKED) {
		if (counts_only()) {
			count_event(PT_KIND_RELEASE, si, 0, 0);
		} else {
			remote_if_unknown(sk, si);
			emit(PT_KIND_RELEASE, si, left_state(sk, oldstate), 0);
		}
	}
	hold_end(si);
}

/* ---- picks: where they are kept (counters.h) ---- */

static __always_inline struct pick_slot *pick_slot(__u64 key)
{
	__u32 i = ((key * 0x9E3779B97F4A7C15ULL) >> 32) & pick_slots_mask;
	return bpf_map_lookup_elem(&pick_slots, &i);
}

static __always_inline void picks_hashed_add(__s64 n)
{
	__u32 k = 0;
	__s64 *v = bpf_map_lookup_elem(&picks_hashed, &k);
	if (v)
		__sync_fetch_and_add(v, n);
}

/* Keep a pick; false when there is no room. slots: pt_state_count. */
static __always_inline bool pick_store(__u64 key, const struct pick *p, bool slots)
{
	if (slots) {
		struct pick_slot *s = pick_slot(key);
		if (s && __sync_val_compare_and_swap(&s->sk, 0, key) == 0) {
			s->p = *p;
			return true;
		}
	}
	if (bpf_map_update_elem(&picks, &key, p, BPF_ANY))
		return false;
	if (slots)
		picks_hashed_add(1);
	return true;
}

static __always_inline struct pick *pick_find(__u64 key, bool slots)
{
	if (slots) {
		struct pick_slot *s = pick_slot(key);
		if (s && *(volatile __u64 *)&s->sk == key)
			return &s->p;
		__u32 k = 0;
		__s64 *n = bpf_map_lookup_elem(&picks_hashed, &k);
		if (!n || *n <= 0)
			return NULL;
	}
	return bpf_map_lookup_elem(&picks, &key);
}

/* The pick's entry goes; what is still wanted of it is read before. */
static __always_inline void pick_drop(__u64 key, bool slots)
{
	if (slots) {
		struct pick_slot *s = pick_slot(key);
		if (s && *(volatile __u64 *)&s->sk == key) {
			/* a full barrier: the slot's reads are done before it frees */
			__sync_val_compare_and_swap(&s->sk, key, 0);
			return;
		}
	}
	if (bpf_map_delete_elem(&picks, &key) == 0 && slots)
		picks_hashed_add(-1);
}

/* Counting without sockops: connect() or listen() on a socket without a
 * port begins (CLOSE->SYN_SENT or ->LISTEN), and the kernel picks the port
 * next, with no other hook of the tier in between. The pick cannot leave
 * the namespace's range, so the socket is counted in use at once, its pick
 * kept in a table slot or the picks hash (counters.h). Its allocation is
 * counted once the pick's outcome shows (pick_settles): a connect()'s when
 * the socket leaves SYN_SENT, a listen()'s when the listener closes, late
 * rather than wrong. */
static __always_inline void pick_begins(struct sock *sk, int newstate, bool slots)
{
	if (sk->__sk_common.skc_num) {
		/* bound: bind() accounted for its port */
		struct sock_info *si = si_get(sk, false);
		if (si && newstate == TCP_SYN_SENT) {
			si->flags |= SI_HAS_PORT | SI_CONNECTING;
			si->txhash = BPF_CORE_READ(sk, sk_txhash);
		} else if (si) {
			si->flags |= SI_HAS_PORT;
		}
		return;
	}
	struct pick p = {
		.alloc_ns = bpf_ktime_get_ns(),
		.netns = sk->__sk_common.skc_net.net->ns.inum,
		.txhash = sk->sk_txhash,
		.via = newstate == TCP_SYN_SENT ? PT_VIA_CONNECT : PT_VIA_LISTEN,
	};
	__u64 key = sk_key(sk);
	if (!key || !pick_store(key, &p, slots)) {
		count_lost(); /* no room: this socket goes uncounted, and it says so */
		return;
	}
	__s64 *held = ns_count_of(p.netns, IPPROTO_TCP, true);
	if (held)
		__sync_fetch_and_add(held, 1);
}

/* The port of a pick went back, or the pick found none (observed false):
 * no longer in use, and the entry goes. */
static __always_inline void pick_end(__u64 key, struct pick *p, bool observed, bool slots)
{
	__u32 netns = p->netns;
	__u64 alloc_ns = p->alloc_ns;
	pick_drop(key, slots);
	if (observed)
		hold_observe_ns(netns, IPPROTO_TCP, alloc_ns, bpf_ktime_get_ns());
	__s64 *held = ns_count_of(netns, IPPROTO_TCP, false);
	if (held)
		__sync_fetch_and_add(held, -1);
}

/* A connect() of a bound socket leaves SYN_SENT: its port is bind()'s, and
 * the search was for a free four-tuple. True when it found none. */
static __always_inline bool bound_connect_settles(struct sock *sk)
{
	struct sock_info *si = si_get(sk, false);
	if (!si || !(si->flags & SI_CONNECTING))
		return false;
	si->flags &= ~SI_CONNECTING;
	if (connect_found_port(sk, si))
		return false;
	connect_failed(sk, local_port(sk));
	return true;
}

/* Counting without sockops: the socket leaves SYN_SENT, or closes, and
 * what a pick came to is known. A connect()'s tcp_connect(), where sockops
 * would have seen the port, ran unless the call failed before it: then the
 * socket goes to CLOSE without a route's capabilities (tcp_v4_connect sets
 * them after the pick, tcp_v6_connect before it, and a failure clears them
 * only after this tracepoint). True when the state change needs nothing
 * more. */
static __always_inline bool pick_settles(struct sock *sk, int oldstate, int newstate, bool slots)
{
	__u64 key = sk_key(sk);
	struct pick *p = pick_find(key, slots);
	if (!p)
		return oldstate == TCP_SYN_SENT && bound_connect_settles(sk);
	if (!p->settled && (oldstate == TCP_SYN_SENT || oldstate == TCP_LISTEN)) {
		p->settled = 1;
		bool listen = oldstate == TCP_LISTEN;
		bool found = listen ? local_port(sk) != 0 : sk->sk_txhash != p->txhash;
		bool ran = listen || newstate != TCP_CLOSE || BPF_CORE_READ(sk, sk_route_caps);
		if (!found || !ran) {
			/* no port, or one found and lost to a routing failure */
			pick_end(key, p, false, slots);
			if (!found)
				pick_failed(sk, 0, listen ? PT_VIA_LISTEN : PT_VIA_CONNECT, listen ? EADDRINUSE : EADDRNOTAVAIL);
			return true;
		}
		ctr_add(p->netns, IPPROTO_TCP, p->via, 0);
	}
	if (newstate == TCP_CLOSE)
		pick_end(key, p, true, slots);
	return true;
}

/* A TCP state change; slots: picks in pick_slots (pt_state_count). */
static __always_inline int state_changed(struct sock *sk, int oldstate, int newstate, bool slots)
{
	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	if (count_lean) {
		if (oldstate == TCP_CLOSE && (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN)) {
			pick_begins(sk, newstate, slots);
			return 0;
		}
		if ((oldstate == TCP_SYN_SENT || newstate == TCP_CLOSE) && pick_settles(sk, oldstate, newstate, slots))
			return 0;
	}

	if (oldstate == TCP_CLOSE && (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN)) {
		/* connect() or listen(), in the caller's context: the owner of a
		 * port the kernel is about to pick. Counts need no owner, and
		 * the hook that sees the port makes the record: only a record
		 * bind() made is marked (a socket storage allocation costs more
		 * than all the rest of a connect+close's hooks together). */
		struct sock_info *si = si_get(sk, !counts_only());
		if (!si)
			return 0;
		if (sk->__sk_common.skc_num)
			si->flags |= SI_HAS_PORT;
		if (!(si->flags & SI_HAS_PORT) && !counts_only())
			owner_from_current(si);
		if (newstate == TCP_SYN_SENT) {
			si->flags |= SI_CONNECTING;
			si->txhash = BPF_CORE_READ(sk, sk_txhash);
			if (!counts_only())
				si->connect_ns = bpf_ktime_get_ns();
		}
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	if (!tier_precise && oldstate == TCP_LISTEN && !local_port(sk)) {
		/* listen() found no port for a socket without one (the precise
		 * tiers see it fail in inet_csk_get_port) */
		struct sock_info *si = si_get(sk, false);
		if (si)
			hold_end(si);
		pick_failed(sk, 0, PT_VIA_LISTEN, EADDRINUSE);
		return 0;
	}

	struct sock_info *si = si_get(sk, false);
	if (!si) {
		/* Counting: connect() made no record at CLOSE->SYN_SENT. Only
		 * the port search leaves a SYN_SENT socket without a port: it
		 * found none. */
		if (counts_only() && !tier_precise && oldstate == TCP_SYN_SENT && !local_port(sk))
			connect_failed(sk, 0);
		return 0;
	}

	if (!tier_precise && (si->flags & SI_CONNECTING) && oldstate == TCP_SYN_SENT) {
		si->flags &= ~SI_CONNECTING;
		if (connect_found_port(sk, si))
			return 0; /* a port (or four-tuple) was found; routing failed after */
		connect_failed(sk, (si->flags & SI_HAS_PORT) ? local_port(sk) : 0);
		return 0;
	}
	si->flags &= ~SI_CONNECTING;

	/* An explicitly bound port stays with the socket until it is
	 * destroyed (tcp_destroy_sock below). */
	__u8 locks = BPF_CORE_READ_BITFIELD(sk, sk_userlocks);
	if ((locks & SOCK_BINDPORT_LOCK) && !(si->flags & SI_RELEASED))
		return 0;
	hold_released(sk, si, oldstate);
	if (count_lean && (si->flags & SI_RELEASED))
		si_forget(sk); /* an orphan, freed next; tcp_destroy_sock is not attached */
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pt_state, struct sock *sk, int oldstate, int newstate)
{
	return state_changed(sk, oldstate, newstate, false);
}

/* pt_state for serve's counting where the kernel has BPF atomics (5.12+):
 * a program of its own, as Linux 5.10 refuses any program that holds a
 * compare-and-swap, even one it would never run. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pt_state_count, struct sock *sk, int oldstate, int newstate)
{
	return state_changed(sk, oldstate, newstate, true);
}

/* The full socket is freed: whatever port it still held goes back. This
 * catches the sockets whose port outlives ->CLOSE (bound explicitly) and
 * those that never left CLOSE (bind(0) then close), where no state change
 * is traced. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(pt_destroy, struct sock *sk)
{
	struct sock_info *si = si_get(sk, false);
	if (!si)
		return 0;
	hold_released(sk, si, TCP_CLOSE);
	si_forget(sk);
	return 0;
}

/* A bind() that post_bind never answered did not get its port. */
static __always_inline void bind_failed(struct sock_info *si)
{
	si->flags &= ~SI_BIND_REQ;
	si->ev_flags = PT_EV_DEFERRED;
	if (who_wanted(si))
		emit_at(PT_KIND_FAIL, si, 0, EADDRINUSE, si->alloc_ns);
	si->ev_flags = 0;
}

/* ---- UDP: connect() ---- */

/* connect() on an unbound UDP socket autobinds right after this hook. */
static __always_inline void udp_connect_failed(struct sock_info *si)
{
	si->flags &= ~SI_UDP_CONNECT;
	si->ev_flags = PT_EV_DEFERRED;
	if (who_wanted(si))
		emit_at(PT_KIND_FAIL, si, 0, EAGAIN, si->alloc_ns);
	si->ev_flags = 0;
}

/* connect() on an unbound UDP socket picked port: report it now, with the
 * connect's caller and time, which the socket carries (deferred). */
static __always_inline void udp_connect_commit(struct sock *sk, struct sock_info *si, __u16 port)
{
	si->flags &= ~SI_UDP_CONNECT;
	local_addr_from_sk(sk, si);
	si->ev_flags = PT_EV_DEFERRED;
	alloc_commit_at(si, port, PT_VIA_CONNECT, true, si->alloc_ns);
	si->ev_flags = 0;
}

/* The socket no longer holds the port porttrace recorded: a UDP
 * connect(AF_UNSPEC) gave it back, and no hook of this tier ran then. The
 * release is stamped when it is noticed, and says so. */
static __always_inline void release_dropped(struct sock_info *si)
{
	if (si->flags & SI_TRACKED) {
		si->ev_flags = PT_EV_DROPPED;
		emit(PT_KIND_RELEASE, si, 0, 0);
		si->ev_flags = 0;
	}
	hold_end(si);
}

/* udp_lib_unhash() zeroes a UDP socket's port but leaves udp_port_hash
 * (skc_u16hashes[0]) as it was: the port a connect(AF_UNSPEC) gave back. */
static __always_inline __u16 udp_last_port(struct sock *sk)
{
	__u16 p = 0;
	bpf_core_read(&p, sizeof(p), &sk->__sk_common.skc_u16hashes[0]);
	return p;
}

/* The last connect() of an unbound UDP socket left it without a port: it
 * found none (EAGAIN), or found one that a connect(AF_UNSPEC) has given
 * back since (glibc's getaddrinfo probes candidates that way). */
static __always_inline void udp_connect_unbound(struct sock *sk, struct sock_info *si)
{
	__u16 last = udp_last_port(sk);
	if (!last || last == si->last_port) {
		udp_connect_failed(si);
		return;
	}
	udp_connect_commit(sk, si, last);
	release_dropped(si);
}

/* A port found for a socket that had none, in its caller's context: the
 * socket tells the rest. A UDP autobind runs before the socket is connected,
 * so its destination comes from the call. */
static __always_inline void alloc_from_sk(struct sock *sk, struct sock_info *si, __u16 port, __u8 proto, __u8 via, bool ephemeral)
{
	if (!si || !port || (si->flags & SI_HAS_PORT))
		return;
	si->proto = proto;
	si->ev_flags = 0;
	if (!counts_only()) {
		owner_from_current(si);
		addrs_from_sk(sk, si);
		if (proto == IPPROTO_UDP && via != PT_VIA_BIND && !si->rport)
			dest_from_syscall(si);
	}
	net_info_sk(sk, si);
	alloc_commit(si, port, via, ephemeral);
}

/* ---- release ---- */

SEC("cgroup/sock_release")
int pt_sock_release(struct bpf_sock *ctx)
{
	struct sock_info *si = si_get(ctx, false);
	if (!si)
		return 1;
	si->flags |= SI_RELEASED;
	if (si->flags & SI_BIND_REQ)
		bind_failed(si);
	if (ctx->protocol != IPPROTO_UDP) {
		/* TCP: the ->CLOSE state change ends the hold, or, where
		 * count_lean leaves tcp_destroy_sock out, this close() of a
		 * socket in CLOSE (bound and never connected, or bound
		 * explicitly and reset), which frees it and its port at once. */
		if (count_lean && ctx->state == TCP_CLOSE) {
			hold_released((struct sock *)ctx, si, TCP_CLOSE);
			si_forget(ctx);
		}
		return 1;
	}
	/* The context hides the port here: read it from the socket. */
	struct sock *sk = (struct sock *)ctx;
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (si->flags & SI_UDP_CONNECT) {
		if (port)
			udp_connect_commit(sk, si, port); /* connected, never sent on */
		else
			udp_connect_unbound(sk, si);
	}
	if ((si->flags & SI_HAS_PORT) && !port) {
		release_dropped(si);
	} else if (si->flags & SI_TRACKED) {
		remote_if_unknown(sk, si);
		emit(PT_KIND_RELEASE, si, 0, 0);
	}
	hold_end(si);
	si_forget(ctx);
	return 1;
}

#endif
