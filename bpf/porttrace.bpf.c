// SPDX-License-Identifier: GPL-2.0
/*
 * porttrace: who gets which local port, how, and for how long.
 *
 * Three tiers of hooks; the loader (tracer/hooks.go) loads only the programs
 * of one, the first the kernel accepts: precise, kprobe, portable.
 *
 * Shared by every tier:
 *   tp_btf/inet_sock_set_state  CLOSE->SYN_SENT and CLOSE->LISTEN run in the
 *       caller's context: the owner of the port about to be picked, and the
 *       start of a connect's port search. Any ->CLOSE after the holder let go
 *       ends the hold; the old state tells whether a TIME_WAIT/FIN_WAIT2
 *       mini-socket took the port over.
 *   tp_btf/tcp_destroy_sock  the full socket is freed with its port: the end
 *       of holds no state change closes (bind then close, an explicit port).
 *   cgroup/sock_release  the holder let go (close, exit, last fd).
 *   iter/task_file  ports already held at start, with their process.
 *   iter/tcp, iter/udp  every socket and TIME_WAIT entry of one namespace,
 *       listed when a failure needs its context (how full was the range).
 *
 * precise: fexit on the functions that pick ports, as they return, with the
 * port, the caller and the outcome at once: inet_csk_get_port (TCP bind,
 * listen), udp_lib_get_port (UDP bind, and the autobind of connect and
 * sendmsg), tcp_v4_connect/tcp_v6_connect (TCP connect, Fast Open,
 * io_uring). Failures are live. Needs BPF trampolines.
 *
 * kprobe: the same functions through kprobe/kretprobe pairs, where
 * trampolines are refused (arm64 before 6.4: no ftrace direct calls).
 * kprobe programs cannot reach socket storage, so this tier keeps its records
 * in sock_hash, keyed by the socket's address (sk_in_hash).
 *
 * portable: no kprobes, no trampolines (the CI machine refuses both):
 *   sockops TCP_CONNECT_CB, TCP_LISTEN_CB  the first point where a TCP
 *       connect()/listen() has its port.
 *   cgroup/bind4,6 + cgroup/post_bind4,6  what bind() asked for and what it
 *       got. A bind that post_bind never answers failed: it is reported when
 *       the socket is closed or bound again (deferred, with the bind's time).
 *   tp_btf/sock_send_length (6.5+)  after every sendmsg: the first send of a
 *       UDP socket with a port we do not know is its autobind, or the first
 *       sign that connect() picked one; EAGAIN on an unbound UDP socket is a
 *       failed autobind. Cheaper than cgroup/sendmsg, which takes the socket
 *       lock on every send. Fallback where it is missing: cgroup/sendmsg4,6
 *       (unconnected sends only; failed autobinds go unseen).
 *   cgroup/connect4,6  a UDP connect() on an unbound socket: it autobinds
 *       after this hook, and nothing runs when it returns, so the outcome is
 *       reported at the first send or the release (deferred).
 *
 * No syscall tracepoints: enabling any of them slows every system call of
 * every process (about 130 ns each on the CI machine).
 * Owners are taken only in process context and carried on the socket:
 * state changes that run in softirq never name a process.
 *
 * Minimum kernel: 5.10 with BTF. Where a helper is missing the programs
 * choose another way, by CO-RE checks of enum bpf_func_id and by settings
 * the loader makes after probing: records in sock_hash where tracing
 * programs cannot reach socket storage (before 5.11, sk_in_hash), system
 * call registers at a measured offset in the task's stack (before 5.15,
 * regs_off), sockets of files through sockfs inodes (before 5.11).
 * Tested on 5.10 and 6.1 (all three tiers, under qemu in CI), 6.18
 * (portable: it refuses the others) and arm64's 6.1 (kprobe, portable).
 * Where kernels differ in shape (ip_local_port_range, IP_LOCAL_PORT_RANGE),
 * CO-RE flavors read each shape in a branch only its kernel takes.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

/* Referenced so their BTF is emitted and bpf2go can generate the Go types. */
const struct pt_event *unused_pt_event __attribute__((unused));
const enum pt_kind *unused_pt_kind __attribute__((unused));
const enum pt_via *unused_pt_via __attribute__((unused));
const enum pt_event_flags *unused_pt_event_flags __attribute__((unused));
const struct pt_sock *unused_pt_sock __attribute__((unused));

/* ---- TCP: connect() and listen() ---- */

SEC("sockops")
int pt_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	if (op != BPF_SOCK_OPS_TCP_CONNECT_CB && op != BPF_SOCK_OPS_TCP_LISTEN_CB)
		return 1;
	struct bpf_sock *bsk = skops->sk;
	if (!bsk)
		return 1;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return 1;
	struct sock_info *si = si_get(bsk, true);
	if (!si)
		return 1;
	si->flags &= ~SI_CONNECTING;
	if (si->flags & SI_HAS_PORT)
		return 1; /* bound before: bind() already accounted for it */
	__u16 port = skops->local_port;
	if (!port)
		return 1;
	if (!port_wanted(port)) {
		si->flags |= SI_HAS_PORT;
		si->flags &= ~SI_TRACKED;
		return 1;
	}
	/* The caller was recorded at CLOSE->SYN_SENT or ->LISTEN: Linux 6.1
	 * does not let sock_ops programs name the current task. */
	struct sock *sk = (struct sock *)tp;
	si->proto = IPPROTO_TCP;
	si->ev_flags = 0;
	addrs_from_sk(sk, si);
	net_info_sk(sk, si);
	alloc_commit(si, port, op == BPF_SOCK_OPS_TCP_CONNECT_CB ? PT_VIA_CONNECT : PT_VIA_LISTEN, true);
	return 1;
}

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

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pt_state, struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	if (oldstate == TCP_CLOSE && (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN)) {
		/* connect() or listen(), in the caller's context: the owner of a
		 * port the kernel is about to pick. */
		struct sock_info *si = si_get(sk, true);
		if (!si)
			return 0;
		if (BPF_CORE_READ(sk, __sk_common.skc_num))
			si->flags |= SI_HAS_PORT;
		if (!(si->flags & SI_HAS_PORT))
			owner_from_current(si);
		if (newstate == TCP_SYN_SENT) {
			si->flags |= SI_CONNECTING;
			si->connect_ns = bpf_ktime_get_ns();
		}
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	struct sock_info *si = si_get(sk, false);
	if (!si)
		return 0;

	if (!tier_precise && (si->flags & SI_CONNECTING) && oldstate == TCP_SYN_SENT) {
		/* tcp_v4/v6_connect() failed before tcp_connect(): in process
		 * context, so the current task is the caller. */
		si->flags &= ~SI_CONNECTING;
		__u16 sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
		if (!(si->flags & SI_HAS_PORT) && sport)
			return 0; /* a port was found; routing failed after */
		struct sock_info f = {};
		owner_from_current(&f);
		f.proto = IPPROTO_TCP;
		f.via = PT_VIA_CONNECT;
		addrs_from_sk(sk, &f);
		f.port = sport;
		net_info_sk(sk, &f);
		if (who_wanted(&f))
			emit(PT_KIND_FAIL, &f, 0, EADDRNOTAVAIL);
		return 0;
	}
	si->flags &= ~SI_CONNECTING;

	/* An explicitly bound port stays with the socket until it is
	 * destroyed (tcp_destroy_sock below). */
	__u8 locks = BPF_CORE_READ_BITFIELD(sk, sk_userlocks);
	if ((locks & SOCK_BINDPORT_LOCK) && !(si->flags & SI_RELEASED))
		return 0;
	if (si->flags & SI_TRACKED) {
		remote_if_unknown(sk, si);
		emit(PT_KIND_RELEASE, si, left_state(sk, oldstate), 0);
	}
	hold_end(si);
	return 0;
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
	if (si->flags & SI_TRACKED) {
		remote_if_unknown(sk, si);
		emit(PT_KIND_RELEASE, si, TCP_CLOSE, 0);
	}
	hold_end(si);
	si_forget(sk);
	return 0;
}

/* ---- bind() ---- */

/* The IPv6 address of a bind/connect call. The context allows only 4-byte
 * loads of it, and only in the programs of the IPv6 hooks. */
static __always_inline void user_ip6(struct bpf_sock_addr *ctx, __u32 *ip6)
{
	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
}

/* IP_BIND_ADDRESS_NO_PORT (nginx proxy_bind, haproxy source, envoy's
 * upstream bind): bind() to port 0 takes no port, connect() picks it, and
 * no post_bind runs. A flag bit since Linux 6.6, a bitfield before. */
struct inet_sock___pre66 {
	__u8 bind_address_no_port : 1;
} __attribute__((preserve_access_index));

static __always_inline bool bind_no_port(struct sock *sk)
{
	struct inet_sock___pre66 *old = (void *)sk;
	if (bpf_core_field_exists(old->bind_address_no_port))
		return BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port);
	/* INET_FLAGS_BIND_ADDRESS_NO_PORT: 18 since the flags were made (6.6);
	 * an anonymous enum, so CO-RE cannot look it up by name. */
	unsigned long fl = BPF_CORE_READ((struct inet_sock *)sk, inet_flags);
	return (fl >> 18) & 1;
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

static __always_inline int on_bind(struct bpf_sock_addr *ctx, bool v6)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk || (sk->protocol != IPPROTO_TCP && sk->protocol != IPPROTO_UDP))
		return 1;
	struct sock_info *si = si_get(sk, true);
	if (!si || (si->flags & SI_HAS_PORT))
		return 1; /* already bound: the kernel refuses with EINVAL */
	if (si->flags & SI_BIND_REQ)
		bind_failed(si); /* a retry: the last attempt failed */
	__u16 req = bpf_ntohs(ctx->user_port);
	if (req && req < 1024)
		return 1; /* privileged ports fail for want of rights as often as of ports */
	struct sock *s = sk_addr(sk);
	if (!req && bind_no_port(s))
		return 1; /* no port at bind: connect() picks it, and says so */
	owner_from_current(si);
	si->family = sk->family;
	si->proto = sk->protocol;
	si->via = PT_VIA_BIND;
	si->port = req;
	si->req_port = req;
	si->rport = 0;
	__builtin_memset(si->raddr, 0, 16);
	__u32 ip6[4] = {};
	if (v6)
		user_ip6(ctx, ip6);
	sockaddr_into(si, v6 ? AF_INET6 : AF_INET, v6 ? 0 : ctx->user_ip4, ip6, 0, false);
	net_info_sk(s, si);
	si->alloc_ns = bpf_ktime_get_ns();
	si->flags |= SI_BIND_REQ;
	return 1;
}

SEC("cgroup/bind4")
int pt_bind4(struct bpf_sock_addr *ctx)
{
	return on_bind(ctx, false);
}

SEC("cgroup/bind6")
int pt_bind6(struct bpf_sock_addr *ctx)
{
	return on_bind(ctx, true);
}

static __always_inline int on_post_bind(struct bpf_sock *ctx, bool v6)
{
	__u16 port = ctx->src_port;
	if (!port) { /* IP_BIND_ADDRESS_NO_PORT: connect() will pick it */
		struct sock_info *si = si_get(ctx, false);
		if (si)
			si->flags &= ~SI_BIND_REQ;
		return 1;
	}
	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	struct sock_info *si;
	if (f_ports_on && !port_wanted(port)) {
		/* Not followed: only answer the bind request, if one was seen. */
		si = si_get(ctx, false);
		if (si) {
			si->flags = (si->flags & ~SI_BIND_REQ) | SI_HAS_PORT;
			si->port = port;
		}
		return 1;
	}
	si = si_get(ctx, true);
	if (!si)
		return 1;
	bool ephemeral = (si->flags & SI_BIND_REQ) && si->req_port == 0;
	si->flags &= ~SI_BIND_REQ;
	owner_from_current(si);
	si->proto = ctx->protocol;
	si->family = ctx->family;
	si->ev_flags = 0;
	__builtin_memset(si->raddr, 0, 16);
	si->rport = 0;
	__u32 ip6[4] = {};
	if (v6) {
		ip6[0] = ctx->src_ip6[0];
		ip6[1] = ctx->src_ip6[1];
		ip6[2] = ctx->src_ip6[2];
		ip6[3] = ctx->src_ip6[3];
	}
	sockaddr_into(si, v6 ? AF_INET6 : AF_INET, v6 ? 0 : ctx->src_ip4, ip6, 0, false);
	net_info_sk((struct sock *)ctx, si);
	alloc_commit(si, port, PT_VIA_BIND, ephemeral);
	return 1;
}

SEC("cgroup/post_bind4")
int pt_post_bind4(struct bpf_sock *ctx)
{
	return on_post_bind(ctx, false);
}

SEC("cgroup/post_bind6")
int pt_post_bind6(struct bpf_sock *ctx)
{
	return on_post_bind(ctx, true);
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

static __always_inline int on_connect(struct bpf_sock_addr *ctx, bool v6)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk || sk->protocol != IPPROTO_UDP || sk->src_port)
		return 1;
	struct sock_info *si = si_get(sk, true);
	if (!si)
		return 1;
	struct sock *s = sk_addr(sk);
	if (si->flags & SI_HAS_PORT)
		release_dropped(si); /* unbound again: connect(AF_UNSPEC) */
	if (si->flags & SI_UDP_CONNECT)
		udp_connect_unbound(s, si);
	owner_from_current(si);
	si->proto = IPPROTO_UDP;
	si->family = sk->family;
	si->via = PT_VIA_CONNECT;
	si->port = 0;
	__u32 rip6[4] = {};
	if (v6)
		user_ip6(ctx, rip6);
	__builtin_memset(si->laddr, 0, 16);
	sockaddr_into(si, v6 ? AF_INET6 : AF_INET, v6 ? 0 : ctx->user_ip4, rip6, ctx->user_port, true);
	net_info_sk(s, si);
	si->alloc_ns = bpf_ktime_get_ns();
	si->flags |= SI_UDP_CONNECT;
	return 1;
}

SEC("cgroup/connect4")
int pt_connect4(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx, false);
}

SEC("cgroup/connect6")
int pt_connect6(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx, true);
}

/* ---- UDP: the first send ---- */

/* System call numbers differ by architecture; bpf2go builds one object per
 * architecture, each with its own. */
#if defined(__TARGET_ARCH_arm64)
#define NR_BIND 200
#define NR_CONNECT 203
#define NR_SENDTO 206
#define NR_SENDMSG 211
#define NR_SENDMMSG 269
#elif defined(__TARGET_ARCH_x86)
#define NR_CONNECT 42
#define NR_SENDTO 44
#define NR_SENDMSG 46
#define NR_BIND 49
#define NR_SENDMMSG 307
#else
#error "porttrace knows the system call numbers of x86-64 and arm64 only"
#endif

/* arm64 keeps a system call's number in syscallno, x86-64 in orig_ax. */
struct pt_regs___arm64_nr {
	int syscallno;
} __attribute__((preserve_access_index));

static __always_inline long syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ((struct pt_regs___arm64_nr *)regs, syscallno);
#else
	return BPF_CORE_READ(regs, orig_ax);
#endif
}

/* Where bpf_task_pt_regs is missing (before Linux 5.15), the loader
 * measures once where a task's system call registers sit from the base of
 * its kernel stack (pt_regs_calib below) and sets this. */
const volatile __u64 regs_off = 0;

static __always_inline struct pt_regs *syscall_regs(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 stack = (__u64)BPF_CORE_READ(t, stack);
	if (!stack || !regs_off)
		return 0;
	return (struct pt_regs *)(stack + regs_off);
}

/* The measurement: the sys_enter tracepoint gets the caller's registers,
 * which is where syscall_regs() must look. Only the loader's own thread
 * (calib_tid) is measured, and only where the number read there is the
 * call's own. */
const volatile __u32 calib_tid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} calib SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int pt_regs_calib(struct bpf_raw_tracepoint_args *ctx)
{
	if ((__u32)bpf_get_current_pid_tgid() != calib_tid)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 stack = (__u64)BPF_CORE_READ(t, stack);
	__u64 regs = ctx->args[0];
	if (!stack || regs <= stack || syscall_nr((struct pt_regs *)regs) != (long)ctx->args[1])
		return 0;
	__u32 k = 0;
	__u64 off = regs - stack;
	bpf_map_update_elem(&calib, &k, &off, BPF_ANY);
	return 0;
}

/* Where a send or connect was going, from the system call's arguments
 * (sendto, sendmsg, sendmmsg, connect); io_uring leaves it unknown. */
static __always_inline void dest_from_syscall(struct sock_info *si)
{
	struct pt_regs *regs = syscall_regs();
	if (!regs)
		return;
	long nr = syscall_nr(regs);
	void *uaddr = NULL;
	if (nr == NR_CONNECT) {
		uaddr = (void *)PT_REGS_PARM2_CORE_SYSCALL(regs);
	} else if (nr == NR_SENDTO) {
		uaddr = (void *)PT_REGS_PARM5_CORE_SYSCALL(regs);
	} else if (nr == NR_SENDMSG || nr == NR_SENDMMSG) {
		/* struct mmsghdr starts with a struct user_msghdr, and that with
		 * msg_name (UAPI). Read by offset: Linux 6.1's BTF has no
		 * user_msghdr to relocate against. */
		void *m = (void *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		bpf_probe_read_user(&uaddr, sizeof(uaddr), m);
	}
	if (!uaddr)
		return;
	struct sockaddr_in6 sa = {};
	bpf_probe_read_user(&sa, sizeof(sa), uaddr);
	if (sa.sin6_family == AF_INET6) {
		sockaddr_into(si, AF_INET6, 0, (__u32 *)&sa.sin6_addr, sa.sin6_port, true);
	} else if (sa.sin6_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
		sockaddr_into(si, AF_INET, s4->sin_addr.s_addr, NULL, s4->sin_port, true);
	}
}

/* A port found for a socket that had none, in its caller's context: the
 * socket tells the rest. A UDP autobind runs before the socket is connected,
 * so its destination comes from the call. */
static __always_inline void alloc_from_sk(struct sock *sk, struct sock_info *si, __u16 port, __u8 proto, __u8 via, bool ephemeral)
{
	if (!si || !port || (si->flags & SI_HAS_PORT))
		return;
	owner_from_current(si);
	si->proto = proto;
	si->ev_flags = 0;
	addrs_from_sk(sk, si);
	if (proto == IPPROTO_UDP && via != PT_VIA_BIND && !si->rport)
		dest_from_syscall(si);
	net_info_sk(sk, si);
	alloc_commit(si, port, via, ephemeral);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(pt_send, struct sock *sk, int ret, int flags)
{
	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_UDP)
		return 0;
	/* The hot path of a server: a socket bound to its port by bind(), which
	 * post_bind (or the scan at start) accounted for, never autobinds. */
	if (BPF_CORE_READ_BITFIELD(sk, sk_userlocks) & SOCK_BINDPORT_LOCK)
		return 0;
	struct sock_info *si = si_get(sk, false);
	__u16 port = sk->__sk_common.skc_num;
	if (si && (si->flags & SI_HAS_PORT)) {
		if (port == si->port)
			return 0; /* a socket whose port we know */
		release_dropped(si);
	}
	if (!port) {
		if (ret != -EAGAIN)
			return 0;
		/* EAGAIN is usually a full buffer; on an unbound socket it is
		 * inet_autobind() finding no port. */
		struct sock_info f = {};
		owner_from_current(&f);
		f.proto = IPPROTO_UDP;
		f.via = PT_VIA_SENDMSG;
		f.family = sk->__sk_common.skc_family;
		net_info_sk(sk, &f);
		dest_from_syscall(&f);
		if (who_wanted(&f))
			emit(PT_KIND_FAIL, &f, 0, EAGAIN);
		return 0;
	}
	if (!port_wanted(port))
		return 0;
	if (!si)
		si = si_get(sk, true);
	if (!si)
		return 0;
	if (si->flags & SI_UDP_CONNECT) {
		udp_connect_commit(sk, si, port);
		return 0;
	}
	alloc_from_sk(sk, si, port, IPPROTO_UDP, PT_VIA_SENDMSG, true);
	return 0;
}

/* Where tp_btf/sock_send_length is missing (before Linux 6.5): a send to an
 * address on an unbound UDP socket has autobound by the time this hook runs.
 * Sends on connected sockets and failed autobinds do not reach it. */
static __always_inline int on_sendmsg(struct bpf_sock_addr *ctx, bool v6)
{
	struct bpf_sock *bsk = ctx->sk;
	if (!bsk || bsk->protocol != IPPROTO_UDP)
		return 1;
	struct sock_info *si = si_get(bsk, false);
	__u16 port = bsk->src_port;
	if (si && (si->flags & SI_HAS_PORT)) {
		if (port == si->port)
			return 1;
		release_dropped(si);
	}
	if (!port || !port_wanted(port))
		return 1;
	if (!si)
		si = si_get(bsk, true);
	if (!si)
		return 1;
	struct sock *sk = sk_addr(bsk);
	if (!sk)
		return 1;
	if (si->flags & SI_UDP_CONNECT) {
		udp_connect_commit(sk, si, port);
		return 1;
	}
	owner_from_current(si);
	si->proto = IPPROTO_UDP;
	si->ev_flags = 0;
	addrs_from_sk(sk, si);
	__u32 rip6[4] = {};
	if (v6)
		user_ip6(ctx, rip6);
	sockaddr_into(si, v6 ? AF_INET6 : AF_INET, v6 ? 0 : ctx->user_ip4, rip6, ctx->user_port, true);
	net_info_sk(sk, si);
	alloc_commit(si, port, PT_VIA_SENDMSG, true);
	return 1;
}

SEC("cgroup/sendmsg4")
int pt_sendmsg4(struct bpf_sock_addr *ctx)
{
	return on_sendmsg(ctx, false);
}

SEC("cgroup/sendmsg6")
int pt_sendmsg6(struct bpf_sock_addr *ctx)
{
	return on_sendmsg(ctx, true);
}

/* ---- precise tier: fexit on the functions that pick ports ----
 *
 * Each runs when the kernel's own port search returns, in the caller's
 * context: the port, the caller and the outcome are all known at once, so
 * nothing is deferred, and every path that takes a port (bind, listen,
 * connect, sendmsg, TCP Fast Open, io_uring) goes through one of them.
 * Releases are left to the shared hooks above and below. */

/* A failed port search, reported as it returns. */
static __always_inline void precise_fail(struct sock *sk, __u8 proto, __u8 via, __u16 port, __s32 err)
{
	struct sock_info f = {};
	owner_from_current(&f);
	f.proto = proto;
	f.via = via;
	f.port = port;
	f.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (via == PT_VIA_CONNECT || via == PT_VIA_SENDMSG)
		dest_from_syscall(&f);
	local_addr_from_sk(sk, &f);
	net_info_sk(sk, &f);
	if (who_wanted(&f))
		emit(PT_KIND_FAIL, &f, 0, err);
}

/* bind() and listen() of TCP sockets; listen() has set TCP_LISTEN first. */
static __always_inline void on_csk_get_port(struct sock *sk, __u16 snum, int ret)
{
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return;
	__u8 via = BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_LISTEN ? PT_VIA_LISTEN : PT_VIA_BIND;
	if (ret) {
		if (snum && (snum < 1024 || !port_wanted(snum)))
			return;
		precise_fail(sk, IPPROTO_TCP, via, snum, EADDRINUSE);
		return;
	}
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (f_ports_on && !port_wanted(port))
		return;
	alloc_from_sk(sk, si_get(sk, true), port, IPPROTO_TCP, via, snum == 0);
}

/* bind() of UDP sockets, and the autobind of connect() and sendmsg(). */
static __always_inline void on_udp_get_port(struct sock *sk, __u16 snum, int ret)
{
	__u8 via = PT_VIA_BIND;
	if (!snum) {
		long nr = syscall_nr(syscall_regs());
		via = nr == NR_BIND ? PT_VIA_BIND : nr == NR_CONNECT ? PT_VIA_CONNECT : PT_VIA_SENDMSG;
	}
	if (ret) {
		if (snum && (snum < 1024 || !port_wanted(snum)))
			return;
		precise_fail(sk, IPPROTO_UDP, via, snum, via == PT_VIA_BIND ? EADDRINUSE : EAGAIN);
		return;
	}
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (f_ports_on && !port_wanted(port))
		return;
	alloc_from_sk(sk, si_get(sk, true), port, IPPROTO_UDP, via, snum == 0);
}

/* TCP connect(), also reached by TCP Fast Open's sendmsg and io_uring;
 * tcp_v6_connect() hands v4-mapped addresses to tcp_v4_connect(). */
static __always_inline void on_tcp_connect(struct sock *sk, int ret)
{
	struct sock_info *si = si_get(sk, true);
	if (si)
		si->flags &= ~SI_CONNECTING;
	if (ret == -EADDRNOTAVAIL) {
		precise_fail(sk, IPPROTO_TCP, PT_VIA_CONNECT, 0, EADDRNOTAVAIL);
		return;
	}
	if (ret)
		return;
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (f_ports_on && !port_wanted(port))
		return;
	alloc_from_sk(sk, si, port, IPPROTO_TCP, PT_VIA_CONNECT, true);
}

/* connect(AF_UNSPEC) on a UDP socket gives its port back, unless bind()
 * chose it: a release, live. */
static __always_inline void on_udp_disconnect(struct sock *sk)
{
	struct sock_info *si = si_get(sk, false);
	if (!si || !(si->flags & SI_HAS_PORT) || BPF_CORE_READ(sk, __sk_common.skc_num))
		return;
	if (si->flags & SI_TRACKED)
		emit(PT_KIND_RELEASE, si, 0, 0);
	hold_end(si);
}

SEC("fexit/inet_csk_get_port")
int BPF_PROG(pt_fx_csk_get_port, struct sock *sk, unsigned short snum, int ret)
{
	on_csk_get_port(sk, snum, ret);
	return 0;
}

SEC("fexit/udp_lib_get_port")
int BPF_PROG(pt_fx_udp_get_port, struct sock *sk, unsigned short snum, unsigned int hash2_nulladdr, int ret)
{
	on_udp_get_port(sk, snum, ret);
	return 0;
}

SEC("fexit/tcp_v4_connect")
int BPF_PROG(pt_fx_tcp_v4_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	on_tcp_connect(sk, ret);
	return 0;
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(pt_fx_tcp_v6_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	on_tcp_connect(sk, ret);
	return 0;
}

SEC("fexit/udp_disconnect")
int BPF_PROG(pt_fx_udp_disconnect, struct sock *sk, int flags, int ret)
{
	on_udp_disconnect(sk);
	return 0;
}

/* ---- kprobe tier: the same, where BPF trampolines are refused ----
 * A kprobe notes the arguments per thread; its kretprobe takes them back
 * with the return value. Records live in sock_hash (sk_in_hash). */

struct kp_call {
	__u64 sk;
	__u64 arg; /* the second argument */
};

/* LRU: a return the kretprobe missed (all its instances busy) leaves an
 * entry behind, which must not fill the map for everyone after. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct kp_call);
} kp_calls SEC(".maps");

/* pid_tgid leaves the top byte free (pids < 2^22): the function goes there. */
static __always_inline __u64 kp_key(__u64 fn)
{
	return bpf_get_current_pid_tgid() | (fn << 56);
}

static __always_inline void kp_enter(__u64 fn, void *sk, __u64 arg)
{
	__u64 key = kp_key(fn);
	struct kp_call c = {.sk = (__u64)sk, .arg = arg};
	if (bpf_map_update_elem(&kp_calls, &key, &c, BPF_ANY))
		count_lost(); /* the call goes unseen: say so */
}

static __always_inline bool kp_exit(__u64 fn, struct kp_call *c)
{
	__u64 key = kp_key(fn);
	struct kp_call *p = bpf_map_lookup_elem(&kp_calls, &key);
	if (!p)
		return false;
	*c = *p;
	bpf_map_delete_elem(&kp_calls, &key);
	return true;
}

/* A kprobe on fn notes its socket and second argument; the kretprobe
 * runs call with sk, arg and ret. id tells the functions apart in kp_calls.
 * Programs: pt_kp_<fn>, pt_kr_<fn>. */
#define KPROBE_PAIR(fn, id, call)                                    \
	SEC("kprobe/" #fn)                                           \
	int BPF_KPROBE(pt_kp_##fn, struct sock *sk, __u64 arg)       \
	{                                                            \
		kp_enter(id, sk, arg);                               \
		return 0;                                            \
	}                                                            \
	SEC("kretprobe/" #fn)                                        \
	int BPF_KRETPROBE(pt_kr_##fn, int ret)                       \
	{                                                            \
		struct kp_call c;                                    \
		if (!kp_exit(id, &c))                                \
			return 0;                                    \
		struct sock *sk = (struct sock *)c.sk;               \
		__u64 arg __attribute__((unused)) = c.arg;           \
		call;                                                \
		return 0;                                            \
	}

KPROBE_PAIR(inet_csk_get_port, 1, on_csk_get_port(sk, arg, ret))
KPROBE_PAIR(udp_lib_get_port, 2, on_udp_get_port(sk, arg, ret))
KPROBE_PAIR(tcp_v4_connect, 3, on_tcp_connect(sk, ret))
KPROBE_PAIR(tcp_v6_connect, 4, on_tcp_connect(sk, ret))
KPROBE_PAIR(udp_disconnect, 5, on_udp_disconnect(sk))

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
	/* The context hides the port here: read it from the socket. */
	struct sock *sk = (struct sock *)ctx;
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (si->flags & SI_UDP_CONNECT) {
		if (port)
			udp_connect_commit(sk, si, port); /* connected, never sent on */
		else
			udp_connect_unbound(sk, si);
	}
	if (ctx->protocol != IPPROTO_UDP)
		return 1; /* TCP: the ->CLOSE state change ends the hold */
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

/* ---- ports held before tracing started ---- */

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SOCKFS_MAGIC 0x534F434B

/* The socket behind a file, or none. Before Linux 5.11 there is no
 * bpf_sock_from_file: a socket's file is an inode of sockfs, which lives in
 * a struct socket_alloc beside its struct socket. */
static __always_inline struct sock *file_sock(struct file *file)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_sock_from_file)) {
		struct socket *sock = bpf_sock_from_file(file);
		return sock ? sock->sk : 0;
	}
	struct inode *ino = BPF_CORE_READ(file, f_inode);
	if (!ino || (BPF_CORE_READ(ino, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	if (BPF_CORE_READ(ino, i_sb, s_magic) != SOCKFS_MAGIC)
		return 0;
	struct socket_alloc *sa = (void *)ino - bpf_core_field_offset(struct socket_alloc, vfs_inode);
	return BPF_CORE_READ(sa, socket.sk);
}

SEC("iter/task_file")
int pt_existing(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file)
		return 0;
	struct sock *sk = file_sock(file);
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u16 proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!port)
		return 0;
	struct sock_info *si = si_get(sk, true);
	if (!si || (si->flags & SI_HAS_PORT))
		return 0; /* a hook or another task sharing the socket came first */

	si->pid = task->tgid;
	si->tid = task->pid;
	si->uid = BPF_CORE_READ(task, cred, uid.val);
	si->cgroup = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	BPF_CORE_READ_STR_INTO(&si->comm, task, group_leader, comm);
	BPF_CORE_READ_STR_INTO(&si->thread, task, comm);
	si->proto = proto;
	si->ev_flags = 0;
	addrs_from_sk(sk, si);
	net_info_sk(sk, si);
	si->port = port;
	si->via = PT_VIA_EXISTING;
	si->ephemeral = in_range(si, port);
	si->alloc_ns = bpf_ktime_get_ns();
	bool wanted = f_ports_on ? port_wanted(port) : si->ephemeral;
	if (!wanted || !who_wanted(si)) {
		si->flags |= SI_HAS_PORT;
		hold_count(si);
		return 0;
	}

	struct pt_event e = {};
	event_fill(&e, PT_KIND_ALLOC, si, 0, 0, si->alloc_ns);
	/* When the read buffer is full the write fails and this socket is
	 * visited again on the next read: mark it only once it is written. */
	if (bpf_seq_write(seq, &e, sizeof(e)))
		return 0;
	si->flags |= SI_HAS_PORT | SI_TRACKED;
	hold_count(si);
	return 0;
}

/* ---- a namespace's sockets, for the context of a failure ---- */

static __always_inline void sock_owner(struct sock *sk, struct pt_sock *r)
{
	struct sock_info *si = si_get(sk, false);
	if (si && si->pid) {
		r->pid = si->pid;
		r->cgroup = si->cgroup;
		__builtin_memcpy(r->comm, si->comm, 16);
		r->owned = 1;
	}
}

static __always_inline void sock_common_into(struct sock_common *skc, struct pt_sock *r)
{
	r->family = skc->skc_family;
	r->lport = skc->skc_num;
	r->rport = bpf_ntohs(skc->skc_dport);
	r->state = skc->skc_state;
	r->netns = BPF_CORE_READ(skc, skc_net.net, ns.inum);
	if (r->family == AF_INET6) {
		BPF_CORE_READ_INTO(&r->laddr, skc, skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&r->raddr, skc, skc_v6_daddr);
	} else {
		__u32 l = skc->skc_rcv_saddr, d = skc->skc_daddr;
		__builtin_memcpy(r->laddr, &l, 4);
		__builtin_memcpy(r->raddr, &d, 4);
	}
}

SEC("iter/tcp")
int pt_list_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	if (!skc)
		return 0;
	struct pt_sock r = {};
	r.proto = IPPROTO_TCP;
	sock_common_into(skc, &r);
	if (r.state == TCP_NEW_SYN_RECV)
		return 0; /* a request: shares its listener's port */
	if (r.state == TCP_TIME_WAIT) {
		struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);
		if (tw)
			r.substate = tw->tw_sk.tw_substate;
	} else {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
		if (tp)
			sock_owner((struct sock *)tp, &r);
	}
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

SEC("iter/udp")
int pt_list_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *up = ctx->udp_sk;
	if (!up)
		return 0;
	struct sock *sk = (struct sock *)up;
	struct pt_sock r = {};
	r.proto = IPPROTO_UDP;
	sock_common_into(&sk->__sk_common, &r);
	r.state = 0;
	sock_owner(sk, &r);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
