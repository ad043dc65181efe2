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
 *       start of a connect's port search (in the portable tier,
 *       LISTEN->CLOSE without a port is a listen() that found none). Any
 *       ->CLOSE after the holder let go ends the hold; the old state tells
 *       whether a TIME_WAIT/FIN_WAIT2 mini-socket took the port over.
 *       pt_state_count is the same program for serve's counting where the
 *       kernel has BPF atomics (5.12+): it claims table slots with a
 *       compare-and-swap, which Linux 5.10 refuses in any program.
 *   tp_btf/tcp_destroy_sock  the full socket is freed with its port: the end
 *       of holds no state change closes (bind then close, an explicit port).
 *       Left out when only counts are wanted (count_lean): those holds end
 *       at the close() that frees the socket, in cgroup/sock_release.
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
 *       connect()/listen() has its port. Left out when only counts are
 *       wanted (serve without a recording): it runs nine times per loopback
 *       connect+close, and the state tracepoint counts the ports instead
 *       (count_lean: pick_begins, pick_settles in shared.h), keeping each
 *       pick in a table slot or a hash keyed by the socket (counters.h).
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

/* Each tier's programs in a file of its own, beside those every tier shares;
 * one object for all kernels (bpf2go compiles this file). */
#include "syscall.h"
#include "shared.h"
#include "tier_portable.h"
#include "tier_precise.h"
#include "tier_kprobe.h"
#include "iter.h"
