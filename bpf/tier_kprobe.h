/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kprobe tier: the precise tier's handlers through kprobe/kretprobe
 * pairs.
 */
#ifndef PORTTRACE_TIER_KPROBE_H
#define PORTTRACE_TIER_KPROBE_H

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

#endif
