/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The precise tier: fexit on the functions that pick ports. Its on_*()
 * handlers serve the kprobe tier too.
 */
#ifndef PORTTRACE_TIER_PRECISE_H
#define PORTTRACE_TIER_PRECISE_H

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

#endif
