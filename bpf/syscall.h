/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The system call behind a hook: its number and arguments, per architecture,
 * with or without bpf_task_pt_regs. Used by the precise and kprobe tiers and
 * by the portable tier's tp_btf/sock_send_length.
 */
#ifndef PORTTRACE_SYSCALL_H
#define PORTTRACE_SYSCALL_H

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

#endif
