#!/usr/bin/env python3
"""Drive real sockets for porttrace's tests and print, as JSON lines, what the
program itself saw: its pid and thread id, the ports it got, errno names, and
monotonic timestamps around each call, so a test can hold the tracer to them.

Usage: sockets.py SCENARIO [ARGS...]   (see the functions below)
"""
import errno
import json
import os
import socket
import struct
import sys
import threading
import time

IP_BIND_ADDRESS_NO_PORT = 24


def now():
    return time.monotonic_ns()


def say(**kw):
    kw.setdefault("pid", os.getpid())
    kw.setdefault("tid", threading.get_native_id())
    print(json.dumps(kw), flush=True)


def family_addr(fam, host):
    """fam: 4, 6 or mapped (an AF_INET6 socket talking to an IPv4 address)."""
    if fam == "4":
        return socket.AF_INET, host
    if fam == "mapped":
        return socket.AF_INET6, "::ffff:" + host
    return socket.AF_INET6, host


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def attempt(s, call):
    """Run call (which gets the port); on failure report the errno, close
    and return False."""
    t0 = now()
    try:
        call()
        return True
    except OSError as e:
        say(errno=err_name(e), t_call=t0)
        s.close()
        return False


def linger(s):
    """Make a TCP socket's close() wait for the peer's ACK of its FIN, its
    lock let go: without it an ACK that comes in while close() holds the
    socket and after it looked at the state (likely under emulation) leaves
    the orphan in FIN_WAIT2 on a 60 s timer, the port held, no release for
    a test to see. With it the kernel hands the port to FIN_WAIT2's timewait
    socket at once."""
    if s.type == socket.SOCK_STREAM:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 10))


def hold_and_close(s, hold_ms, before_close=None, **more):
    """Report the port s got, keep it hold_ms, close it, and report the
    monotonic times on either side of the hold (and more)."""
    t1 = now()
    lport = s.getsockname()[1]
    time.sleep(int(hold_ms) / 1000)
    if before_close:
        before_close()
    linger(s)
    t2 = now()
    s.close()
    say(port=lport, t_alloc=t1, t_release=t2, **more)


def tcp_connect(fam, host, port, hold_ms, style="close", no_port="no"):
    """connect, hold, then end the way `style` says:
    close     close() right away (the peer is still open: FIN_WAIT2)
    shutdown  shutdown(SHUT_WR), wait for the peer's FIN, then close (TIME_WAIT)
    peer      wait for the peer to close first, then close (CLOSE)"""
    af, addr = family_addr(fam, host)
    s = socket.socket(af, socket.SOCK_STREAM)
    if no_port == "noport":
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((addr, 0))
    if not attempt(s, lambda: s.connect((addr, int(port)))):
        return

    def ending():
        if style == "shutdown":
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
            time.sleep(0.05)
        elif style == "peer":
            while s.recv(4096):
                pass
    hold_and_close(s, hold_ms, ending)


def udp(mode, fam, host, port, hold_ms):
    """mode: sendto, sendmsg or connect; the socket is unbound before."""
    af, addr = family_addr(fam, host)
    s = socket.socket(af, socket.SOCK_DGRAM)
    calls = {
    "sendto": lambda: s.sendto(b"x", (addr, int(port))),
    "sendmsg": lambda: s.sendmsg([b"x"], [], 0, (addr, int(port))),
    "connect": lambda: s.connect((addr, int(port))),
    }
    if attempt(s, calls[mode]):
        hold_and_close(s, hold_ms)


def bind(proto, fam, host, port, hold_ms):
    """bind to port (0: the kernel picks), hold, close."""
    af, addr = family_addr(fam, host)
    s = socket.socket(af, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    if attempt(s, lambda: s.bind((addr, int(port)))):
        hold_and_close(s, hold_ms)


def exhaust(kind, host, port):
    """Take the only port of the range, then try for another: prints the
    holder's port and the errno of the second attempt. kind: tcp-connect,
    tcp-reconnect (the second attempt on a socket that was connected and
    disconnected by connect(AF_UNSPEC) before the holder came), tcp-bind,
    tcp-listen (listen() on an unbound socket), udp-bind, udp-sendto,
    udp-connect."""
    b = socket.socket() if kind.startswith("tcp") else socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if kind == "tcp-reconnect":
        b.connect((host, int(port)))
        disconnect(b)
    if kind.startswith("tcp"):
        a = socket.socket()
    else:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if kind in ("tcp-connect", "tcp-reconnect"):
        a.connect((host, int(port)))
    else:
        a.bind((host, 0))
    say(role="holder", port=a.getsockname()[1])
    t0 = now()
    try:
        if kind in ("tcp-connect", "tcp-reconnect"):
            b.connect((host, int(port)))
        elif kind in ("tcp-bind", "udp-bind"):
            b.bind((host, 0))
        elif kind == "tcp-listen":
            b.listen(1)
        elif kind == "udp-sendto":
            b.sendto(b"x", (host, int(port)))
        else:
            b.connect((host, int(port)))
        say(role="second", port=b.getsockname()[1])
    except OSError as e:
        say(role="second", errno=err_name(e), t_call=t0)
    b.close()
    a.close()


def disconnect(s):
    """connect(AF_UNSPEC): the socket drops its connection and, unless bind()
    chose it, its port; it may connect again. Python's connect() cannot say
    AF_UNSPEC."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    unspec = struct.pack("HH12x", socket.AF_UNSPEC, 0)
    if libc.connect(s.fileno(), unspec, len(unspec)) != 0:
        raise OSError(ctypes.get_errno(), "connect(AF_UNSPEC)")


def hold(host, port):
    """Take a TCP port by connect and a UDP port by bind(0), report them, and
    keep them until a line arrives on stdin."""
    t = socket.create_connection((host, int(port)))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((host, 0))
    say(tcp=t.getsockname()[1], udp=u.getsockname()[1])
    sys.stdin.readline()
    linger(t)
    t2 = now()
    t.close()
    u.close()
    say(closed=True, t_release=t2)
    sys.stdin.readline()


def fork_share(host, port, hold_ms):
    """The parent gets a UDP port by sendto, forks, and closes its fd at once;
    the child keeps the socket hold_ms longer, then exits without closing it:
    the port goes with the last fd, at the child's exit."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", (host, int(port)))
    t1 = now()
    lport = s.getsockname()[1]
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        time.sleep(int(hold_ms) / 1000)
        os.write(w, str(now()).encode())
        os._exit(0)
    os.close(w)
    s.close()
    t_exit = int(os.read(r, 64))
    os.waitpid(child, 0)
    say(port=lport, child=child, t_alloc=t1, t_release=t_exit)


def exit_holding(host, port, hold_ms):
    """Connect, then exit without closing: the kernel closes at exit."""
    s = socket.create_connection((host, int(port)))
    linger(s)
    t1 = now()
    say(port=s.getsockname()[1], t_alloc=t1)
    time.sleep(int(hold_ms) / 1000)
    os._exit(0)


def many_udp(host, port, n):
    """n UDP sockets in a row, each autobound by one sendto and closed."""
    for _ in range(int(n)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"x", (host, int(port)))
        s.close()
    say(count=int(n))


def fill(host, port, n_close):
    """Connect until the range runs dry, close the first n_close (their
    ports wait in TIME_WAIT), try once more, report, and hold the rest until
    a line arrives on stdin."""
    held, fails = [], []
    while True:
        s = socket.socket()
        try:
            s.connect((host, int(port)))
            held.append(s)
        except OSError as e:
            fails.append(err_name(e))
            s.close()
            break
    for s in held[: int(n_close)]:
        s.close()
    time.sleep(0.2)
    s = socket.socket()
    try:
        s.connect((host, int(port)))
        held.append(s)
    except OSError as e:
        fails.append(err_name(e))
        s.close()
    say(held=[x.getsockname()[1] for x in held[int(n_close):]], fails=fails)
    sys.stdin.readline()


def narrow_connect(host, port, lo, hi):
    """connect() on a socket whose own IP_LOCAL_PORT_RANGE is lo..hi."""
    IP_LOCAL_PORT_RANGE = 51
    s = socket.socket()
    s.setsockopt(socket.SOL_IP, IP_LOCAL_PORT_RANGE, struct.pack("I", (int(hi) << 16) | int(lo)))
    s.connect((host, int(port)))
    say(port=s.getsockname()[1])
    s.close()


def hold_udp(host, n):
    """Take n UDP ports by bind(0), report, and keep them until a line
    arrives on stdin."""
    socks = []
    for _ in range(int(n)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))
        socks.append(s)
    say(count=len(socks))
    sys.stdin.readline()


def listen_unbound(hold_ms):
    """listen() on a socket never bound: the kernel picks its port."""
    s = socket.socket()
    if not attempt(s, lambda: s.listen(1)):
        return
    hold_and_close(s, hold_ms)


def fastopen(host, port, hold_ms):
    """TCP Fast Open: sendto(MSG_FASTOPEN) connects and sends in one call,
    no connect() at all."""
    s = socket.socket()
    if not attempt(s, lambda: s.sendto(b"x", socket.MSG_FASTOPEN, (host, int(port)))):
        return
    hold_and_close(s, hold_ms)


def hold_n(host, port, n):
    """Connect n times, report the ports, and hold them until a line
    arrives on stdin."""
    held = [socket.create_connection((host, int(port))) for _ in range(int(n))]
    say(ports=[x.getsockname()[1] for x in held])
    sys.stdin.readline()


def bind_connect(proto, host, port, no_port, hold_ms):
    """bind(host, 0), then connect: with no_port == "noport" under
    IP_BIND_ADDRESS_NO_PORT (connect picks the port, as nginx's proxy_bind
    and haproxy's source do), else bind picks it; a number binds that port.
    Reports the port after each call."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    if no_port == "noport":
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    t0 = now()
    s.bind((host, int(no_port) if no_port.isdigit() else 0))
    after_bind = s.getsockname()[1]
    if attempt(s, lambda: s.connect((host, int(port)))):
        hold_and_close(s, hold_ms, after_bind=after_bind, t_bind=t0)


def udp_reconnect(host, port1, port2, hold_ms):
    """What glibc's getaddrinfo does to sort candidates: connect a UDP
    socket, give the port back with connect(AF_UNSPEC), connect again."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t1 = now()
    s.connect((host, int(port1)))
    t1b = now()
    first = s.getsockname()[1]
    time.sleep(int(hold_ms) / 1000)
    t2 = now()
    disconnect(s)
    t3 = now()
    gone = s.getsockname()[1]
    s.connect((host, int(port2)))
    second = s.getsockname()[1]
    time.sleep(int(hold_ms) / 1000)
    t4 = now()
    s.close()
    say(first=first, after_unspec=gone, second=second, t_connect=t1, t_connected=t1b, t_unspec=t2, t_unspec_done=t3, t_release=t4)


def thread_connect(name, host, port, hold_ms):
    """A thread named name (prctl PR_SET_NAME) connects; the process keeps
    its own name."""
    import ctypes
    libc = ctypes.CDLL(None)

    def run():
        libc.prctl(15, name.encode(), 0, 0, 0)
        s = socket.create_connection((host, int(port)))
        hold_and_close(s, hold_ms)
    t = threading.Thread(target=run)
    t.start()
    t.join()


def connect_many(host, port, n):
    """n TCP connects one after another, each closed at once; for each the
    port and the monotonic time just before connect()."""
    out = []
    for _ in range(int(n)):
        t0 = now()
        c = socket.create_connection((host, int(port)))
        out.append([c.getsockname()[1], t0])
        c.close()
    say(conns=out)


def connect_together(host, port, n, hold_ms):
    """n TCP connects held at once, then each closed (lingering); the
    ports."""
    held = [socket.create_connection((host, int(port))) for _ in range(int(n))]
    ports = [x.getsockname()[1] for x in held]
    time.sleep(int(hold_ms) / 1000)
    for s in held:
        linger(s)
        s.close()
    say(ports=ports)


def renamed(name_hex, scen, *args):
    """Run another scenario under a process name anyone could choose:
    prctl(PR_SET_NAME) takes any bytes, control bytes included."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(15, ctypes.c_char_p(bytes.fromhex(name_hex)), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
    SCENARIOS[scen](*args)


def main():
    scen, args = sys.argv[1], sys.argv[2:]
    SCENARIOS[scen](*args)


SCENARIOS = {
    "tcp-connect": tcp_connect,
    "udp": udp,
    "bind": bind,
    "exhaust": exhaust,
    "hold": hold,
    "fork-share": fork_share,
    "exit-holding": exit_holding,
    "many-udp": many_udp,
    "fill": fill,
    "hold-udp": hold_udp,
    "listen": listen_unbound,
    "narrow-connect": narrow_connect,
    "fastopen": fastopen,
    "renamed": renamed,
    "hold-n": hold_n,
    "bind-connect": bind_connect,
    "udp-reconnect": udp_reconnect,
    "thread-connect": thread_connect,
    "connect-many": connect_many,
    "connect-together": connect_together,
}


if __name__ == "__main__":
    main()
