/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps, filters and helpers shared by the programs in porttrace.bpf.c.
 * Kept apart so the programs file reads as "hook -> decision -> event".
 */
#ifndef PORTTRACE_COMMON_H
#define PORTTRACE_COMMON_H

#include "vmlinux.h"
#include <bpf_helpers.h>
#include <bpf_core_read.h>
#include <bpf_tracing.h>
#include <bpf_endian.h>
#include "porttrace.h"

/* vmlinux.h is x86-64's; every kernel structure is relocated by CO-RE, but
 * arm64's kprobe context is its UAPI register file, which x86 has not. */
#if defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif

#define AF_INET 2
#define AF_INET6 10
#define EAGAIN 11
#define EADDRINUSE 98
#define EADDRNOTAVAIL 99
#define SOCK_BINDPORT_LOCK 8

/* sock_info.flags */
#define SI_HAS_PORT (1 << 0)    /* the socket holds a port we know of */
#define SI_TRACKED (1 << 1)     /* an alloc was emitted: a release is owed */
#define SI_CONNECTING (1 << 2)  /* TCP CLOSE->SYN_SENT seen, tcp_connect() not yet;
                                 * without sockops also ->LISTEN, its pick unsettled */
#define SI_RELEASED (1 << 3)    /* the last fd is gone (cgroup/sock_release) */
#define SI_BIND_REQ (1 << 4)    /* bind() asked, post_bind has not answered yet */
#define SI_UDP_CONNECT (1 << 5) /* connect() on an unbound UDP socket, outcome unseen */
#define SI_COUNTED (1 << 6)     /* counted in ns_held until its port goes back */

/* What porttrace remembers about one socket, kept on the socket itself so it
 * is freed with it and a reused struct sock never inherits stale state. */
struct sock_info {
	__u64 alloc_ns;
	__u64 connect_ns; /* TCP: when CLOSE->SYN_SENT began the port search */
	__u64 cgroup;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 netns;
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 port;
	__u16 rport;
	__u16 req_port;
	__u16 family;
	__u16 range_lo;
	__u16 range_hi;
	__u16 ns_lo;      /* the namespace's range, before IP_LOCAL_PORT_RANGE */
	__u16 ns_hi;
	__u8 flags;
	__u8 via;
	__u8 ephemeral;
	__u8 proto;
	__u8 ev_flags;
	__u8 pad;
	__u16 last_port; /* the last port porttrace recorded for the socket */
	__u16 pad2;
	__u32 txhash; /* TCP: sk_txhash as connect() began (connect_found_port) */
	char comm[16];
	char thread[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_info);
} socks SEC(".maps");

/* The same records, keyed by the socket's address, for the kprobe tier:
 * kprobe programs cannot reach socket storage. Entries go when the socket is
 * destroyed or released; LRU bounds what a missed teardown leaves. Sized by
 * the loader: 1 entry unless the kprobe tier is in use. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, struct sock_info);
} sock_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the loader */
} events SEC(".maps");

/* Events that did not fit in the ring buffer; the loader turns increases
 * into "lost" events. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

/* Sockets holding a port of their namespace's ephemeral range, per
 * namespace and protocol, kept as ports are taken and given back: how full
 * a range is at any moment, read by a failing call and by the loader. */
struct ns_key {
	__u32 netns;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ns_key);
	__type(value, __s64);
} ns_held SEC(".maps");

/* Filters, fixed at load time so the verifier prunes what is unused. */
const volatile __u8 f_ports_on = 0;
const volatile __u64 f_ports[1024] = {}; /* bitmap of 65536 ports */
const volatile __u32 f_npids = 0;
const volatile __u32 f_pids[16] = {};
const volatile __u32 f_ncomms = 0;
const volatile char f_comms[8][16] = {};
const volatile __u8 f_proto = 0;   /* 0: any */
const volatile __u16 f_family = 0; /* 0: any */

#include "counters.h"

/* Set by the loader when the precise hooks (fexit on the functions that
 * pick ports) report allocations and failures: the shared hooks then leave
 * those to them. */
const volatile __u8 tier_precise = 0;

/* Set by the loader for the kprobe tier: records live in sock_hash. */
const volatile __u8 sk_in_hash = 0;

/* Submitting without a wakeup spares every traced call an interrupt; the
 * reader polls, and is woken only once this many bytes wait. */
const volatile __u64 wakeup_bytes = 1 << 20;

static __always_inline bool port_wanted(__u16 port)
{
	if (!f_ports_on)
		return true;
	return (f_ports[port >> 6] >> (port & 63)) & 1;
}

static __always_inline bool comm_eq(const char *a, const volatile char *b)
{
	for (int i = 0; i < 16; i++) {
		if (a[i] != b[i])
			return false;
		if (!a[i])
			return true;
	}
	return true;
}

/* Everything but the port: pid, comm, protocol, family. A command name
 * matches the process's name or the calling thread's. */
static __always_inline bool who_wanted(const struct sock_info *si)
{
	if (f_proto && si->proto != f_proto)
		return false;
	if (f_family && si->family != f_family)
		return false;
	if (f_npids) {
		bool ok = false;
		for (int i = 0; i < 16; i++) {
			if (i >= f_npids)
				break;
			if (f_pids[i] == si->pid) {
				ok = true;
				break;
			}
		}
		if (!ok)
			return false;
	}
	if (f_ncomms) {
		bool ok = false;
		for (int i = 0; i < 8; i++) {
			if (i >= f_ncomms)
				break;
			if (comm_eq(si->comm, f_comms[i]) || comm_eq(si->thread, f_comms[i])) {
				ok = true;
				break;
			}
		}
		if (!ok)
			return false;
	}
	return true;
}

static __always_inline bool in_range(const struct sock_info *si, __u16 port)
{
	return si->range_lo && port >= si->range_lo && port <= si->range_hi;
}

static __always_inline void count_lost(void)
{
	__u32 k = 0;
	__u64 *c = bpf_map_lookup_elem(&lost_events, &k);
	if (c)
		(*c)++;
}

/* The caller: its process (pid, and the name ps and ss show: the thread
 * group leader's) and the calling thread (tid, and its own name, which a
 * program may set per thread: dig's isc-net-0000, a JVM's workers). */
static __always_inline void owner_from_current(struct sock_info *si)
{
	__u64 id = bpf_get_current_pid_tgid();
	si->pid = id >> 32;
	si->tid = (__u32)id;
	si->uid = (__u32)bpf_get_current_uid_gid();
	si->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(si->thread, sizeof(si->thread));
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ_STR_INTO(&si->comm, task, group_leader, comm) <= 0)
		__builtin_memcpy(si->comm, si->thread, sizeof(si->comm));
}

/* ip_local_port_range of a namespace: a packed u32 since 6.3, int[2] behind
 * a seqlock before. The two shapes are incompatible types for CO-RE, so each
 * is read through its own flavor, in a branch the other kernel never takes. */
struct local_ports___pre63 {
	seqlock_t lock;
	int range[2];
} __attribute__((preserve_access_index));

struct local_ports___63 {
	__u32 range;
} __attribute__((preserve_access_index));

static __always_inline void net_info(struct net *net, struct sock_info *si)
{
	if (!net)
		return;
	si->netns = BPF_CORE_READ(net, ns.inum);
	struct local_ports___pre63 *old = (void *)&net->ipv4.ip_local_ports;
	if (bpf_core_field_exists(old->lock)) {
		int r[2] = {};
		bpf_core_read(&r, sizeof(r), &old->range);
		si->range_lo = r[0];
		si->range_hi = r[1];
	} else {
		struct local_ports___63 *lp = (void *)&net->ipv4.ip_local_ports;
		__u32 r = 0;
		bpf_core_read(&r, sizeof(r), &lp->range);
		si->range_lo = r & 0xffff;
		si->range_hi = r >> 16;
	}
	si->ns_lo = si->range_lo;
	si->ns_hi = si->range_hi;
}

struct inet_sock___lohi {
	struct {
		__u16 lo;
		__u16 hi;
	} local_port_range;
} __attribute__((preserve_access_index));

/* The namespace's range, narrowed by the socket's own IP_LOCAL_PORT_RANGE
 * (Linux 6.3+) the way inet_sk_get_local_port_range() narrows it. */
static __always_inline void net_info_sk(struct sock *sk, struct sock_info *si)
{
	net_info(BPF_CORE_READ(sk, __sk_common.skc_net.net), si);
	/* A u32 since 6.8; a struct of lo and hi, same layout, in 6.3 and in
	 * the stable kernels it was backported to (Debian's 6.1). */
	struct inet_sock *inet = (struct inet_sock *)sk;
	struct inet_sock___lohi *lohi = (void *)sk;
	__u32 r = 0;
	if (bpf_core_field_exists(lohi->local_port_range.lo))
		bpf_core_read(&r, sizeof(r), &lohi->local_port_range);
	else if (bpf_core_field_exists(inet->local_port_range))
		r = BPF_CORE_READ(inet, local_port_range);
	if (!r || !si->range_lo)
		return;
	__u16 lo = r & 0xffff, hi = r >> 16;
	if (lo < si->range_lo)
		lo = si->range_lo;
	if (!hi || hi > si->range_hi)
		hi = si->range_hi;
	if (lo <= hi) {
		si->range_lo = lo;
		si->range_hi = hi;
	}
}

/* One word of scratch per CPU, to turn a pointer into a plain number:
 * the verifier lets a pointer's value out only through memory. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} scratch SEC(".maps");

/* A socket's address as a plain number: the key of sock_hash. */
static __always_inline __u64 sk_key(void *sk)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&scratch, &k);
	if (!v)
		return 0;
	*(volatile __u64 *)v = (__u64)sk;
	return *(volatile __u64 *)v;
}

/* The struct sock behind the struct bpf_sock a bind/connect/sendmsg hook
 * gets, for probe reads of what that view leaves out (namespace, ranges,
 * addresses). The verifier forbids arithmetic on the socket pointer itself;
 * its value, passed through memory, is a plain address. bpf_rdonly_cast()
 * would do it directly, but only from Linux 6.2. */
static __always_inline struct sock *sk_addr(struct bpf_sock *bsk)
{
	return (struct sock *)sk_key(bsk);
}

static const struct sock_info si_zero;

/* The record porttrace keeps for a socket: in socket storage, or in
 * sock_hash for the kprobe tier (the other branch is pruned at load). */
static __always_inline struct sock_info *si_get(void *sk, bool create)
{
	if (sk_in_hash) {
		__u64 key = sk_key(sk);
		if (!key)
			return NULL;
		struct sock_info *si = bpf_map_lookup_elem(&sock_hash, &key);
		if (si || !create)
			return si;
		bpf_map_update_elem(&sock_hash, &key, &si_zero, BPF_NOEXIST);
		return bpf_map_lookup_elem(&sock_hash, &key);
	}
	return bpf_sk_storage_get(&socks, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

/* The socket is gone: socket storage goes with it, sock_hash must be told. */
static __always_inline void si_forget(void *sk)
{
	if (sk_in_hash) {
		__u64 key = sk_key(sk);
		bpf_map_delete_elem(&sock_hash, &key);
	}
}

static __always_inline void map_v4(__u8 *dst, __u32 v4)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &v4, 4);
}

static __always_inline bool is_v4_mapped(const __u8 *a)
{
	for (int i = 0; i < 10; i++)
		if (a[i])
			return false;
	return a[10] == 0xff && a[11] == 0xff;
}

/* The local address of a socket. A v4-mapped connect on an AF_INET6 socket
 * runs the IPv4 path, which fills only the IPv4 fields at first: si->raddr
 * (and si->family) must be set already. */
static __always_inline void local_addr_from_sk(struct sock *sk, struct sock_info *si)
{
	__u32 l4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
	if (si->family == AF_INET6) {
		BPF_CORE_READ_INTO(&si->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		if (is_v4_mapped(si->raddr))
			map_v4(si->laddr, l4);
	} else {
		__builtin_memcpy(si->laddr, &l4, 4);
	}
}

/* The remote address and port of a socket (si->family set). */
static __always_inline void remote_from_sk(struct sock *sk, struct sock_info *si)
{
	si->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (si->family == AF_INET6) {
		BPF_CORE_READ_INTO(&si->raddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__u32 r4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(si->raddr, &r4, 4);
	}
}

/* Addresses and ports of a full socket. */
static __always_inline void addrs_from_sk(struct sock *sk, struct sock_info *si)
{
	si->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	remote_from_sk(sk, si);
	local_addr_from_sk(sk, si);
}

/* A port taken by bind() and connected later (curl --local-port, dig, a
 * proxy's bind-then-connect): the hold ends with the remote it had. */
static __always_inline void remote_if_unknown(struct sock *sk, struct sock_info *si)
{
	if (!si->rport && BPF_CORE_READ(sk, __sk_common.skc_dport))
		remote_from_sk(sk, si);
}

static __always_inline void sockaddr_into(struct sock_info *si, __u32 family,
					  __u32 ip4, const __u32 *ip6, __u16 port_be, bool remote)
{
	__u8 *dst = remote ? si->raddr : si->laddr;
	if (family == AF_INET6) {
		__builtin_memcpy(dst, ip6, 16);
	} else if (si->family == AF_INET6) {
		map_v4(dst, ip4);
	} else {
		__builtin_memcpy(dst, &ip4, 4);
	}
	if (remote)
		si->rport = bpf_ntohs(port_be);
}

/* Counting follows every port, so it is off under a port filter, whose
 * point is to leave the other ports alone. */
static __always_inline __s64 *ns_count_of(__u32 netns, __u8 proto, bool create)
{
	struct ns_key k = {.netns = netns, .proto = proto};
	__s64 *v = bpf_map_lookup_elem(&ns_held, &k);
	if (v || !create)
		return v;
	__s64 zero = 0;
	bpf_map_update_elem(&ns_held, &k, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&ns_held, &k);
}

static __always_inline __s64 *ns_count(const struct sock_info *si, bool create)
{
	return ns_count_of(si->netns, si->proto, create);
}

/* Count the socket in its namespace's range, whatever its port: for a
 * port the kernel is about to pick, which cannot leave the range. */
static __always_inline void hold_count_range(struct sock_info *si)
{
	if (f_ports_on || (si->flags & SI_COUNTED) || !si->netns || !si->ns_lo)
		return;
	__s64 *v = ns_count(si, true);
	if (!v)
		return;
	__sync_fetch_and_add(v, 1);
	si->flags |= SI_COUNTED;
}

/* The socket took si->port: count it if the port is of its range. */
static __always_inline void hold_count(struct sock_info *si)
{
	if (si->port < si->ns_lo || si->port > si->ns_hi)
		return;
	hold_count_range(si);
}

/* The socket's port went back: no longer counted, nothing owed. */
static __always_inline void hold_end(struct sock_info *si)
{
	if (si->flags & SI_COUNTED) {
		__s64 *v = ns_count(si, false);
		if (v)
			__sync_fetch_and_add(v, -1);
	}
	si->flags &= ~(SI_TRACKED | SI_HAS_PORT | SI_COUNTED);
}

/* Sockets holding ports of the failing call's range as it failed; -1 where
 * that is not known: counting is off, the call was seen late, or the
 * socket's own IP_LOCAL_PORT_RANGE narrows the range. */
static __always_inline __s32 held_at_call(const struct sock_info *si)
{
	if (f_ports_on || (si->ev_flags & PT_EV_DEFERRED))
		return -1;
	if (si->range_lo != si->ns_lo || si->range_hi != si->ns_hi)
		return -1;
	__s64 *v = ns_count(si, false);
	return v ? (__s32)*v : 0;
}

/* Fill an event from what the socket's record says. */
static __always_inline void event_fill(struct pt_event *e, __u8 kind, const struct sock_info *si, __u8 state, __s32 err, __u64 ts)
{
	e->ts_ns = ts;
	e->alloc_ns = si->alloc_ns;
	e->cgroup = si->cgroup;
	e->pid = si->pid;
	e->tid = si->tid;
	e->uid = si->uid;
	e->netns = si->netns;
	__builtin_memcpy(e->laddr, si->laddr, 16);
	__builtin_memcpy(e->raddr, si->raddr, 16);
	e->lport = si->port;
	e->rport = si->rport;
	e->family = si->family;
	e->kind = kind;
	e->proto = si->proto;
	e->via = si->via;
	e->ephemeral = si->ephemeral;
	e->state = state;
	e->flags = si->ev_flags;
	e->err = err;
	e->range_lo = si->range_lo;
	e->range_hi = si->range_hi;
	__builtin_memcpy(e->comm, si->comm, 16);
	__builtin_memcpy(e->thread, si->thread, 16);
	e->held_at_call = kind == PT_KIND_FAIL ? held_at_call(si) : 0;
	e->search_ns = (kind == PT_KIND_ALLOC && si->via == PT_VIA_CONNECT && si->proto == IPPROTO_TCP && si->connect_ns)
			       ? si->alloc_ns - si->connect_ns : 0;
}

/* Emit an event that happened at ts (0: now). */
static __always_inline void emit_at(__u8 kind, const struct sock_info *si, __u8 state, __s32 err, __u64 ts)
{
	if (!count_event(kind, si, err, ts))
		return;
	struct pt_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return;
	}
	event_fill(e, kind, si, state, err, ts ? ts : bpf_ktime_get_ns());
	/* A failure wakes the reader at once: its context (how full the range
	 * is) is read from the namespace right after, while it still holds. */
	__u64 queued = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bool wake = kind == PT_KIND_FAIL || queued >= wakeup_bytes;
	bpf_ringbuf_submit(e, wake ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void emit(__u8 kind, const struct sock_info *si, __u8 state, __s32 err)
{
	emit_at(kind, si, state, err, 0);
}

/* Record a fresh allocation, made at ts (0: now), on the socket and emit it
 * if the filters want it. */
static __always_inline void alloc_commit_at(struct sock_info *si, __u16 port, __u8 via, bool ephemeral, __u64 ts)
{
	si->port = port;
	si->last_port = port;
	si->via = via;
	si->ephemeral = ephemeral;
	si->alloc_ns = ts ? ts : bpf_ktime_get_ns();
	si->flags |= SI_HAS_PORT;
	si->flags &= ~SI_TRACKED;
	hold_count(si);
	bool wanted = ephemeral ? port_wanted(port) : (f_ports_on ? port_wanted(port) : in_range(si, port));
	if (!wanted || !who_wanted(si))
		return;
	si->flags |= SI_TRACKED;
	emit_at(PT_KIND_ALLOC, si, 0, 0, si->alloc_ns);
}

static __always_inline void alloc_commit(struct sock_info *si, __u16 port, __u8 via, bool ephemeral)
{
	alloc_commit_at(si, port, via, ephemeral, 0);
}

#endif
