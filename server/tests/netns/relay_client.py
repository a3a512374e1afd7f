# A relay agent's view of DHCPv4 clients, for the failover lab (server/tests/netns/failover.rs):
# runs in the lab's client namespace, sends every request from GIADDR:67 as a relay agent would
# (hops 1, giaddr set) to the limited broadcast on INTERFACE, so both servers of a pair see it,
# and receives the servers' answers on GIADDR:67 (RFC 2131 §4.1: a reply to a relayed request
# goes to the relay agent). One line per transaction tells what became of it, so a benchmark
# can say when clients were answered and by whom; nothing is retransmitted (an unanswered
# request is a refused client).
#
# argv: MODE INPUT OUTPUT key=value ...
#   MODE dora:  INPUT has one MAC a line; each MAC does DISCOVER → first OFFER → REQUEST
#               (selecting, with options 50 and 54) → ACK/NAK.
#   MODE renew: INPUT has `MAC ADDRESS` a line; each line is one RENEWING REQUEST (ciaddr set,
#               no option 50/54), answered by ACK/NAK. The list is cycled until stopped.
#   keys: interface (br0), giaddr (10.215.0.250), rate (transactions started per second, 100),
#         timeout (seconds a transaction may take, 2), secs (the `secs` field, 0),
#         seconds (stop starting new ones after this many, 60), stop (a path: stop starting
#         new ones once it exists).
# OUTPUT, one line per transaction, in completion order:
#   `START-EPOCH END-EPOCH MAC RESULT SERVER-ID YIADDR` (RESULT ack, nak or timeout; `-` when
#   unknown), then a last line `done SENT ACKED NAKED TIMEOUTS`.
import select
import socket
import struct
import sys
import time

BOOTREQUEST = 1
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
MAGIC = b"\x63\x82\x53\x63"
SO_BINDTODEVICE = 25


def mac_bytes(text):
    return bytes(int(part, 16) for part in text.split(":"))


def build(message_type, xid, mac, giaddr, secs, ciaddr="0.0.0.0", requested=None, server=None):
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        BOOTREQUEST,
        1,
        6,
        1,
        xid,
        secs,
        0,
        socket.inet_aton(ciaddr),
        bytes(4),
        bytes(4),
        socket.inet_aton(giaddr),
        mac_bytes(mac) + bytes(10),
        b"",
        b"",
    )
    options = bytes([53, 1, message_type])
    if requested:
        options += bytes([50, 4]) + socket.inet_aton(requested)
    if server:
        options += bytes([54, 4]) + socket.inet_aton(server)
    options += bytes([55, 3, 1, 3, 51, 255])
    return header + MAGIC + options


def parse(data):
    """(xid, message type, yiaddr, server id) of a BOOTREPLY, or None."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    yiaddr = socket.inet_ntoa(data[16:20])
    message_type, server = None, None
    index = 240
    while index < len(data):
        code = data[index]
        if code == 255:
            break
        if code == 0:
            index += 1
            continue
        if index + 1 >= len(data):
            break
        length = data[index + 1]
        value = data[index + 2 : index + 2 + length]
        if code == 53 and length == 1:
            message_type = value[0]
        elif code == 54 and length == 4:
            server = socket.inet_ntoa(value)
        index += 2 + length
    return xid, message_type, yiaddr, server


def main():
    mode, input_path, output_path = sys.argv[1:4]
    keys = dict(argument.split("=", 1) for argument in sys.argv[4:])
    interface = keys.get("interface", "br0")
    giaddr = keys.get("giaddr", "10.215.0.250")
    rate = float(keys.get("rate", "100"))
    timeout = float(keys.get("timeout", "2"))
    secs = int(keys.get("secs", "0"))
    seconds = float(keys.get("seconds", "60"))
    stop = keys.get("stop")
    with open(input_path) as source:
        items = [line.split() for line in source if line.strip()]
    if not items:
        sys.exit("empty input")

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((giaddr, 67))
    destination = ("255.255.255.255", 67)
    out = open(output_path, "w", buffering=1)

    # xid → [start, mac, phase ('discover' | 'request'), deadline, server that NAKed]
    pending = {}
    counts = {"sent": 0, "ack": 0, "nak": 0, "timeout": 0}
    started = time.time()
    next_start = started
    next_xid = (int(started * 1000) & 0xFFFF) << 16
    cursor = 0
    sending = True

    def finish(xid, result, server="-", yiaddr="-"):
        start, mac = pending.pop(xid)[:2]
        counts[result] += 1
        out.write(f"{start:.3f} {time.time():.3f} {mac} {result} {server} {yiaddr}\n")

    while sending or pending:
        now = time.time()
        if sending and (now - started >= seconds or (stop and _exists(stop))):
            sending = False
        if mode == "dora" and cursor >= len(items):
            sending = False
        while sending and now >= next_start:
            item = items[cursor % len(items)]
            cursor += 1
            next_xid = (next_xid + 1) & 0xFFFFFFFF
            if mode == "dora":
                packet = build(DISCOVER, next_xid, item[0], giaddr, secs)
            else:
                packet = build(REQUEST, next_xid, item[0], giaddr, secs, ciaddr=item[1])
            pending[next_xid] = [now, item[0], "discover" if mode == "dora" else "request", now + timeout, None]
            counts["sent"] += 1
            try:
                sock.sendto(packet, destination)
            except OSError:
                pass
            next_start += 1.0 / rate
            if mode == "dora" and cursor >= len(items):
                break
        for xid in [xid for xid, entry in pending.items() if entry[3] <= now]:
            if pending[xid][4]:
                finish(xid, "nak", pending[xid][4])
            else:
                finish(xid, "timeout")
        wait = 0.05
        if sending:
            wait = min(wait, max(0.0, next_start - now))
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            continue
        while True:
            try:
                data = sock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            reply = parse(data)
            if reply is None:
                continue
            xid, message_type, yiaddr, server = reply
            entry = pending.get(xid)
            if entry is None:
                continue
            if entry[2] == "discover" and message_type == OFFER:
                entry[2] = "request"
                try:
                    sock.sendto(
                        build(REQUEST, xid, entry[1], giaddr, secs, requested=yiaddr, server=server),
                        destination,
                    )
                except OSError:
                    pass
            elif entry[2] == "request" and message_type == ACK:
                finish(xid, "ack", server or "-", yiaddr)
            elif entry[2] == "request" and message_type == NAK:
                # The other server of the pair may still ACK: a NAK counts only if no ACK
                # comes before the deadline.
                entry[4] = server or "-"
    out.write(f"done {counts['sent']} {counts['ack']} {counts['nak']} {counts['timeout']}\n")
    out.close()


def _exists(path):
    try:
        open(path).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
