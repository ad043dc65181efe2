// SPDX-License-Identifier: GPL-2.0
/*
 * porttrace: who gets which local port, how, and for how long.
 *
 * Hooks ("portable" tier: no kprobes, no fentry/fexit) and why each:
 *   sockops TCP_CONNECT_CB, TCP_LISTEN_CB  the first point where a TCP
 *       connect()/listen() has its port; process context, so the caller is
 *       the owner. Seen by io_uring and TCP Fast Open too.
 *   tp_btf/inet_sock_set_state  CLOSE->SYN_SENT opens a connect attempt;
 *       SYN_SENT->CLOSE before tcp_connect() is a failed port search; any
 *       ->CLOSE after the holder let go ends the hold, and the old state tells
 *       whether a TIME_WAIT/FIN_WAIT2 mini-socket took the port over.
 *   cgroup/bind4,6 + cgroup/post_bind4,6  what bind() asked for and what it
 *       got (bind to port 0, or an explicit port inside the range).
 *   cgroup/sendmsg4,6  runs after UDP autobind on sendto()/sendmsg(): the
 *       first one on a socket without a known port is the allocation.
 *   cgroup/connect4,6 + tracepoint syscalls/sys_exit_connect  UDP connect()
 *       autobinds after the last cgroup hook; the syscall exit sees the port.
 *   tp_btf/tcp_destroy_sock  the full socket is freed with its port: the end
 *       of holds that no state change closes (bind then close, or an
 *       explicitly bound port).
 *   cgroup/sock_release  the holder let go (close, exit, last fd).
 *   tracepoint syscalls/sys_exit_{bind,sendto,sendmsg,sendmmsg}  errors no
 *       other hook sees: EADDRINUSE from bind, EAGAIN from UDP autobind.
 *   iter/task_file  ports already held at start, with their process.
 * Owners are taken only in process context and carried on the socket in
 * BPF_MAP_TYPE_SK_STORAGE: state changes that run in softirq never name a
 * process.
 *
 * Minimum kernel: 5.11 for sk storage from tp_btf and bpf_sock_from_file in
 * iterators; cgroup hooks need bpf_get_current_task_btf (base helpers for
 * CAP_PERFMON). Developed and tested on 6.18.
 * Fallbacks: none inside this object; a later "precise" tier (fexit/kprobes
 * on inet_csk_get_port, udp_lib_get_port, __inet_hash_connect) is a separate
 * object chosen by the loader.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

/* Referenced so their BTF is emitted and bpf2go can generate the Go types. */
const struct pt_event *unused_pt_event __attribute__((unused));
const enum pt_kind *unused_pt_kind __attribute__((unused));
const enum pt_via *unused_pt_via __attribute__((unused));

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
	struct sock_info *si = bpf_sk_storage_get(&socks, bsk, 0, BPF_SK_STORAGE_GET_F_CREATE);
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
	struct sock *sk = (struct sock *)tp;
	owner_from_current(si);
	si->proto = IPPROTO_TCP;
	si->ev_flags = 0;
	addrs_from_sk(sk, si);
	net_info(BPF_CORE_READ(sk, __sk_common.skc_net.net), si);
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
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		struct sock_info *si = bpf_sk_storage_get(&socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!si)
			return 0;
		si->flags |= SI_CONNECTING;
		if (BPF_CORE_READ(sk, __sk_common.skc_num))
			si->flags |= SI_HAS_PORT;
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	struct sock_info *si = bpf_sk_storage_get(&socks, sk, 0, 0);
	if (!si)
		return 0;

	if ((si->flags & SI_CONNECTING) && oldstate == TCP_SYN_SENT) {
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
		net_info(BPF_CORE_READ(sk, __sk_common.skc_net.net), &f);
		if (who_wanted(&f))
			emit(PT_KIND_FAIL, &f, 0, EADDRNOTAVAIL);
		return 0;
	}
	si->flags &= ~SI_CONNECTING;

	/* An explicitly bound port stays with the socket until it is
	 * destroyed (tcp_destroy_sock below). */
	__u8 locks = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_userlocks);
	if ((locks & SOCK_BINDPORT_LOCK) && !(si->flags & SI_RELEASED))
		return 0;
	if (si->flags & SI_TRACKED)
		emit(PT_KIND_RELEASE, si, left_state(sk, oldstate), 0);
	si->flags &= ~(SI_TRACKED | SI_HAS_PORT);
	return 0;
}

/* The full socket is freed: whatever port it still held goes back. This
 * catches the sockets whose port outlives ->CLOSE (bound explicitly) and
 * those that never left CLOSE (bind(0) then close), where no state change
 * is traced. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(pt_destroy, struct sock *sk)
{
	struct sock_info *si = bpf_sk_storage_get(&socks, sk, 0, 0);
	if (!si || !(si->flags & SI_TRACKED))
		return 0;
	emit(PT_KIND_RELEASE, si, TCP_CLOSE, 0);
	si->flags &= ~(SI_TRACKED | SI_HAS_PORT);
	return 0;
}

/* ---- bind() ---- */

static __always_inline int on_bind(struct bpf_sock_addr *ctx, bool v6)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk || (sk->protocol != IPPROTO_TCP && sk->protocol != IPPROTO_UDP))
		return 1;
	struct sock_info *si = bpf_sk_storage_get(&socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (si) {
		si->req_port = bpf_ntohs(ctx->user_port);
		si->flags |= SI_BIND_REQ;
	}
	struct pending *p = pending_new(PENDING_BIND);
	if (!p)
		return 1;
	owner_from_current(&p->si);
	p->si.family = sk->family;
	p->si.proto = sk->protocol;
	p->si.via = PT_VIA_BIND;
	p->si.port = bpf_ntohs(ctx->user_port);
	__u32 ip6[4] = {};
	if (v6) {
		ip6[0] = ctx->user_ip6[0];
		ip6[1] = ctx->user_ip6[1];
		ip6[2] = ctx->user_ip6[2];
		ip6[3] = ctx->user_ip6[3];
	}
	sockaddr_into(&p->si, v6 ? AF_INET6 : AF_INET, v6 ? 0 : ctx->user_ip4, ip6, 0, false);
	net_info_caller(bpf_get_netns_cookie(ctx), &p->si);
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
	if (!port) /* IP_BIND_ADDRESS_NO_PORT: connect() will pick it */
		return 1;
	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	struct sock_info *si;
	if (f_ports_on && !port_wanted(port)) {
		/* Not followed: only clear the bind request, if one was seen. */
		si = bpf_sk_storage_get(&socks, ctx, 0, 0);
		if (si)
			si->flags = (si->flags & ~SI_BIND_REQ) | SI_HAS_PORT;
		return 1;
	}
	si = bpf_sk_storage_get(&socks, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
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
	net_info_caller(bpf_get_netns_cookie(ctx), si);
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

SEC("tracepoint/syscalls/sys_exit_bind")
int pt_exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret != -EADDRINUSE) {
		pending_take(PENDING_BIND);
		return 0;
	}
	struct pending *p = pending_take(PENDING_BIND);
	if (p && who_wanted(&p->si))
		emit(PT_KIND_FAIL, &p->si, 0, EADDRINUSE);
	return 0;
}

/* ---- UDP: sendto()/sendmsg() autobind ---- */

static __always_inline int on_sendmsg(struct bpf_sock_addr *ctx, bool v6)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	struct sock_info *si = bpf_sk_storage_get(&socks, sk, 0, 0);
	if (si && (si->flags & SI_HAS_PORT))
		return 1; /* the hot path: a socket whose port we know */
	if (sk->protocol != IPPROTO_UDP)
		return 1;
	__u16 port = sk->src_port;
	if (!port || !port_wanted(port))
		return 1;
	if (si && (si->flags & SI_UDP_CONNECT)) {
		__u64 cookie = bpf_get_socket_cookie(ctx);
		if (bpf_map_lookup_elem(&udp_conn, &cookie)) {
			si->flags |= SI_HAS_PORT; /* connect() picked it */
			return 1;
		}
	}
	si = bpf_sk_storage_get(&socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!si)
		return 1;
	owner_from_current(si);
	si->proto = IPPROTO_UDP;
	si->family = sk->family;
	si->ev_flags = 0;
	__u32 lip6[4] = {sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3]};
	sockaddr_into(si, sk->family, sk->src_ip4, lip6, 0, false);
	__u32 rip6[4] = {};
	if (v6) {
		rip6[0] = ctx->user_ip6[0];
		rip6[1] = ctx->user_ip6[1];
		rip6[2] = ctx->user_ip6[2];
		rip6[3] = ctx->user_ip6[3];
	}
	sockaddr_into(si, v6 ? AF_INET6 : AF_INET, v6 ? 0 : ctx->user_ip4, rip6, ctx->user_port, true);
	net_info_caller(bpf_get_netns_cookie(ctx), si);
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

/* ---- UDP: connect() autobind ---- */

static __always_inline int on_connect(struct bpf_sock_addr *ctx, bool v6)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk || sk->protocol != IPPROTO_UDP || sk->src_port)
		return 1;
	struct sock_info *si = bpf_sk_storage_get(&socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (si)
		si->flags |= SI_UDP_CONNECT;
	struct pending *p = pending_new(PENDING_UDP_CONNECT);
	if (!p)
		return 1;
	p->cookie = bpf_get_socket_cookie(ctx);
	owner_from_current(&p->si);
	p->si.proto = IPPROTO_UDP;
	p->si.family = sk->family;
	p->si.via = PT_VIA_CONNECT;
	p->si.ephemeral = 1;
	__u32 rip6[4] = {};
	if (v6) {
		rip6[0] = ctx->user_ip6[0];
		rip6[1] = ctx->user_ip6[1];
		rip6[2] = ctx->user_ip6[2];
		rip6[3] = ctx->user_ip6[3];
	}
	sockaddr_into(&p->si, v6 ? AF_INET6 : AF_INET, v6 ? 0 : ctx->user_ip4, rip6, ctx->user_port, true);
	net_info_caller(bpf_get_netns_cookie(ctx), &p->si);
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

SEC("tracepoint/syscalls/sys_exit_connect")
int pt_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	struct pending *p = pending_take(PENDING_UDP_CONNECT);
	if (!p)
		return 0;
	long ret = ctx->ret;
	if (ret == -EAGAIN) {
		if (who_wanted(&p->si))
			emit(PT_KIND_FAIL, &p->si, 0, EAGAIN);
	} else if (ret == 0) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		struct sock *sk = sock_of_fd(PT_REGS_PARM1_CORE_SYSCALL(regs));
		__u64 cookie = 0;
		__u16 port = 0;
		if (sk) {
			cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
			port = BPF_CORE_READ(sk, __sk_common.skc_num);
		}
		if (sk && port && cookie == p->cookie) {
			struct sock_info *si = &p->si;
			__u8 ip[16] = {};
			if (si->family == AF_INET6) {
				BPF_CORE_READ_INTO(&ip, sk, __sk_common.skc_v6_rcv_saddr);
				if (is_v4_mapped(si->raddr))
					map_v4(ip, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
			} else {
				__u32 l4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
				__builtin_memcpy(ip, &l4, 4);
			}
			__builtin_memcpy(si->laddr, ip, 16);
			alloc_commit(si, port, PT_VIA_CONNECT, true);
			si->tracked = (si->flags & SI_TRACKED) != 0;
			bpf_map_update_elem(&udp_conn, &cookie, si, BPF_ANY);
		}
	}
	return 0;
}

/* ---- UDP autobind failures on send ---- */

/* EAGAIN from a send is usually a full buffer; only an unbound UDP socket
 * means inet_autobind() found no port. */
static __always_inline int on_exit_send(struct trace_event_raw_sys_exit *ctx, int kind)
{
	if (ctx->ret != -EAGAIN)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	struct sock *sk = sock_of_fd(PT_REGS_PARM1_CORE_SYSCALL(regs));
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_num))
		return 0;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_UDP)
		return 0;
	struct sock_info f = {};
	owner_from_current(&f);
	f.proto = IPPROTO_UDP;
	f.via = PT_VIA_SENDMSG;
	f.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	net_info(BPF_CORE_READ(sk, __sk_common.skc_net.net), &f);

	void *uaddr = NULL;
	if (kind == 0) { /* sendto(fd, buf, len, flags, addr, addrlen) */
		uaddr = (void *)PT_REGS_PARM5_CORE_SYSCALL(regs);
	} else { /* sendmsg(fd, msg, flags) / sendmmsg(fd, msgvec, ...) */
		struct user_msghdr *m = (void *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		bpf_probe_read_user(&uaddr, sizeof(uaddr), &m->msg_name);
	}
	if (uaddr) {
		struct sockaddr_in6 sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), uaddr);
		if (sa.sin6_family == AF_INET6) {
			sockaddr_into(&f, AF_INET6, 0, (__u32 *)&sa.sin6_addr, sa.sin6_port, true);
		} else if (sa.sin6_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
			sockaddr_into(&f, AF_INET, s4->sin_addr.s_addr, NULL, s4->sin_port, true);
		}
	}
	if (who_wanted(&f))
		emit(PT_KIND_FAIL, &f, 0, EAGAIN);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int pt_exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit_send(ctx, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int pt_exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit_send(ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int pt_exit_sendmmsg(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit_send(ctx, 1);
}

/* ---- release ---- */

SEC("cgroup/sock_release")
int pt_sock_release(struct bpf_sock *ctx)
{
	struct sock_info *si = bpf_sk_storage_get(&socks, ctx, 0, 0);
	if (!si)
		return 1;
	si->flags |= SI_RELEASED;
	if (ctx->protocol != IPPROTO_UDP)
		return 1; /* TCP: the ->CLOSE state change ends the hold */
	if (si->flags & SI_UDP_CONNECT) {
		__u64 cookie = bpf_get_socket_cookie(ctx);
		struct sock_info *c = bpf_map_lookup_elem(&udp_conn, &cookie);
		if (c) {
			if (c->tracked)
				emit(PT_KIND_RELEASE, c, 0, 0);
			bpf_map_delete_elem(&udp_conn, &cookie);
			return 1;
		}
	}
	if (si->flags & SI_TRACKED)
		emit(PT_KIND_RELEASE, si, 0, 0);
	si->flags &= ~(SI_TRACKED | SI_HAS_PORT);
	return 1;
}

/* ---- ports held before tracing started ---- */

SEC("iter/task_file")
int pt_existing(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file)
		return 0;
	struct socket *sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	struct sock *sk = sock->sk;
	if (!sk)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u16 proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	__u16 port = sk->__sk_common.skc_num;
	if (!port)
		return 0;
	struct sock_info *si = bpf_sk_storage_get(&socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!si || (si->flags & SI_HAS_PORT))
		return 0; /* a hook or another task sharing the socket came first */

	si->pid = task->tgid;
	si->tid = task->pid;
	si->uid = BPF_CORE_READ(task, cred, uid.val);
	si->cgroup = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	BPF_CORE_READ_STR_INTO(&si->comm, task, comm);
	si->proto = proto;
	si->ev_flags = 0;
	addrs_from_sk(sk, si);
	net_info(BPF_CORE_READ(sk, __sk_common.skc_net.net), si);
	si->port = port;
	si->via = PT_VIA_EXISTING;
	si->ephemeral = in_range(si, port);
	si->alloc_ns = bpf_ktime_get_ns();
	si->flags |= SI_HAS_PORT;
	bool wanted = f_ports_on ? port_wanted(port) : si->ephemeral;
	if (!wanted || !who_wanted(si))
		return 0;
	si->flags |= SI_TRACKED;

	struct pt_event e = {};
	e.ts_ns = si->alloc_ns;
	e.alloc_ns = si->alloc_ns;
	e.cgroup = si->cgroup;
	e.pid = si->pid;
	e.tid = si->tid;
	e.uid = si->uid;
	e.netns = si->netns;
	__builtin_memcpy(e.laddr, si->laddr, 16);
	__builtin_memcpy(e.raddr, si->raddr, 16);
	e.lport = port;
	e.rport = si->rport;
	e.family = si->family;
	e.kind = PT_KIND_ALLOC;
	e.proto = proto;
	e.via = PT_VIA_EXISTING;
	e.ephemeral = si->ephemeral;
	e.range_lo = si->range_lo;
	e.range_hi = si->range_hi;
	__builtin_memcpy(e.comm, si->comm, 16);
	bpf_seq_write(seq, &e, sizeof(e));
	return 0;
}
