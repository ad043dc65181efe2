/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The portable tier: sockops, cgroup/bind4,6, cgroup/post_bind4,6,
 * cgroup/connect4,6, tp_btf/sock_send_length or cgroup/sendmsg4,6.
 */
#ifndef PORTTRACE_TIER_PORTABLE_H
#define PORTTRACE_TIER_PORTABLE_H

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
	 * does not let sock_ops programs name the current task. Counts need
	 * only the namespace and its range. */
	struct sock *sk = (struct sock *)tp;
	si->proto = IPPROTO_TCP;
	si->ev_flags = 0;
	if (counts_only()) {
		net_info(BPF_CORE_READ(sk, __sk_common.skc_net.net), si);
	} else {
		addrs_from_sk(sk, si);
		net_info_sk(sk, si);
	}
	alloc_commit(si, port, op == BPF_SOCK_OPS_TCP_CONNECT_CB ? PT_VIA_CONNECT : PT_VIA_LISTEN, true);
	return 1;
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

#endif
