/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared between the BPF programs and the Go loader. bpf2go generates
 * the Go side from these definitions (-type pt_event), so this file is the
 * only place the wire format is written down.
 */
#ifndef PORTTRACE_H
#define PORTTRACE_H

enum pt_kind {
	PT_KIND_ALLOC = 1,
	PT_KIND_RELEASE = 2,
	PT_KIND_FAIL = 3,
};

enum pt_via {
	PT_VIA_CONNECT = 1,
	PT_VIA_SENDMSG = 2,
	PT_VIA_BIND = 3,
	PT_VIA_EXISTING = 4,
	PT_VIA_LISTEN = 5,
};

/* pt_event.flags */
enum pt_event_flags {
	/* seen after the fact: ts_ns is when the call was made, but no hook
	 * runs when it returns, so the event was sent later (at the socket's
	 * first send, its next call of the same kind, or its release) */
	PT_EV_DEFERRED = 1,
	/* release: the port went back before this event: a UDP
	 * connect(AF_UNSPEC) that no hook of the tier sees; ts_ns is when
	 * porttrace noticed (the socket's next connect, send or close) */
	PT_EV_DROPPED = 2,
};

/* One event on the ring buffer (and, for iter/task_file, in the seq file). */
struct pt_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns() when the event happened */
	__u64 alloc_ns;   /* release: when the port was allocated */
	__u64 cgroup;     /* cgroup v2 id of the caller (holder for release) */
	__u32 pid;        /* tgid */
	__u32 tid;
	__u32 uid;
	__u32 netns;      /* inode number of the socket's network namespace */
	__u8 laddr[16];   /* IPv4 in the first 4 bytes, network order */
	__u8 raddr[16];
	__u16 lport;      /* host order */
	__u16 rport;      /* host order */
	__u16 family;     /* AF_INET or AF_INET6 */
	__u8 kind;        /* enum pt_kind */
	__u8 proto;       /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 via;         /* enum pt_via */
	__u8 ephemeral;   /* 1: the kernel picked the port from the range */
	__u8 state;       /* release (TCP): state the socket was left in */
	__u8 flags;       /* enum pt_event_flags */
	__s32 err;        /* fail: positive errno */
	__u16 range_lo;   /* the namespace's ip_local_port_range, 0 if unknown */
	__u16 range_hi;
	char comm[16];    /* the process's name: its thread group leader's comm */
	__u64 search_ns;  /* alloc by TCP connect: from CLOSE->SYN_SENT to the port found */
	char thread[16];  /* the calling thread's own comm */
	__s32 held_at_call; /* fail: sockets holding ports of the range as the call
			     * failed, counted by the programs; -1 if unknown */
	__u32 pad;
};

/* One socket or TIME_WAIT entry of a namespace, as iter/tcp and iter/udp
 * list them (written to the iterator's seq file, not the ring buffer). */
struct pt_sock {
	__u64 cgroup;     /* cgroup v2 id of the process porttrace saw take it */
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;      /* host order */
	__u16 rport;      /* host order */
	__u16 family;
	__u8 proto;
	__u8 state;       /* TCP state (TIME_WAIT for a mini-socket); 0 for UDP */
	__u8 substate;    /* TIME_WAIT entries: TIME_WAIT or FIN_WAIT2 */
	__u8 owned;       /* pid and comm come from porttrace's record of the socket */
	__u16 pad;
	__u32 pid;
	__u32 netns;
	char comm[16];
};

#endif
