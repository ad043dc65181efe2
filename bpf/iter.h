/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Iterators every tier runs: ports held at start (iter/task_file) and a
 * namespace's sockets (iter/tcp, iter/udp).
 */
#ifndef PORTTRACE_ITER_H
#define PORTTRACE_ITER_H

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
	if (count_lean && proto == IPPROTO_TCP) {
		__u64 key = sk_key(sk);
		struct pick_slot *s = pick_slot(key);
		if ((s && s->sk == key) || bpf_map_lookup_elem(&picks, &key))
			return 0; /* connect() or listen() picked it as we started: counted */
	}
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

#endif
