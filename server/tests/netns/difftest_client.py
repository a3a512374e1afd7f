# The scripted DHCP client of the differential harness (server/tests/netns/difftest.rs).
#
# Runs inside the lab's client namespace. It sends every request as a raw Ethernet frame
# (AF_PACKET) on the client interface, so that a direct client can come from 0.0.0.0 with any
# chaddr and a relay agent from its giaddr, and it sees every reply by sniffing the same
# interface (also unicasts to an address nobody holds, and to a MAC that is not the
# interface's). Nothing leaves the lab: the interface is one end of the lab's veth pair.
#
# argv: STEPS-FILE INTERFACE SERVER-IP SERVER-MAC
# Steps file, one line each (written by difftest.rs):
#   exchange NAME                      forget the lease and server learnt so far, drop the
#                                      addresses added for the previous exchange
#   sleep SECONDS
#   step NAME key=value ...            send one request, wait for its reply
# Step keys: msg (53; 0 sends no option 53: a BOOTP request), mac, xid (hex), secs, flags, ciaddr (IP | lease), giaddr (IP),
#   opt50 (IP | lease), opt54 (IP | server), opts (hex of the other options, `-` if none),
#   relay82 (hex of option 82's payload, `-` if none), ipsrc (IP | ciaddr | giaddr | 0),
#   ipdst (broadcast | server), sport, dport, wait (seconds).
# Output, one line per step: `result NAME none` or
#   `result NAME LINK-DESTINATION IP-DST UDP-DPORT HEX-OF-THE-BOOTP-MESSAGE`
# (LINK-DESTINATION: see link_destination).
import select
import socket
import struct
import subprocess
import sys
import time

ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1

steps_file, interface, server_ip, server_mac = sys.argv[1:5]

raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
raw.bind((interface, ETH_P_IP))
ifindex = socket.if_nametoindex(interface)
raw.setsockopt(
    SOL_PACKET,
    PACKET_ADD_MEMBERSHIP,
    struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""),
)
own_mac = bytes.fromhex(open("/sys/class/net/%s/address" % interface).read().strip().replace(":", ""))

# Sockets that only absorb what reaches this namespace's UDP ports 67/68 (relayed replies to a
# giaddr, unicasts to an address added for RENEWING), so the kernel sends no ICMP back.
absorbers = []
for port in (67, 68):
    absorber = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    absorber.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    absorber.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    absorber.bind(("", port))
    absorber.setblocking(False)
    absorbers.append(absorber)


def drain():
    for absorber in absorbers:
        while True:
            try:
                absorber.recv(4096)
            except (BlockingIOError, OSError):
                break
    while select.select([raw], [], [], 0)[0]:
        raw.recv(65536)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def frame(eth_dst, eth_src, ip_src, ip_dst, sport, dport, payload):
    src = socket.inet_aton(ip_src)
    dst = socket.inet_aton(ip_dst)
    udp_length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_length)
    udp = struct.pack("!HHHH", sport, dport, udp_length, 0) + payload
    udp_sum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_length, 0, 0, 64, 17, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return eth_dst + eth_src + struct.pack("!H", ETH_P_IP) + header + udp


def option(code, value):
    out = b""
    # RFC 3396: long values are split into several options of the same code.
    while True:
        chunk, value = value[:255], value[255:]
        out += bytes([code, len(chunk)]) + chunk
        if not value:
            return out


def mac_text(raw_mac):
    return ":".join("%02x" % byte for byte in raw_mac)


def parse_reply(data):
    """(eth_dst, ip_dst, dport, bootp) of an IPv4/UDP frame to port 67/68, else None."""
    if len(data) < 14 + 20 + 8:
        return None
    ihl = (data[14] & 0x0F) * 4
    if data[14 + 9] != 17:
        return None
    udp = 14 + ihl
    dport = struct.unpack("!H", data[udp + 2 : udp + 4])[0]
    if dport not in (67, 68):
        return None
    ip_dst = socket.inet_ntoa(data[14 + 16 : 14 + 20])
    length = struct.unpack("!H", data[udp + 4 : udp + 6])[0]
    return data[0:6], ip_dst, dport, data[udp + 8 : udp + length]


def reply_options(bootp):
    found = {}
    rest = bootp[240:]
    while len(rest) >= 1:
        code = rest[0]
        if code == 0:
            rest = rest[1:]
            continue
        if code == 255 or len(rest) < 2:
            break
        length = rest[1]
        found.setdefault(code, rest[2 : 2 + length])
        rest = rest[2 + length :]
    return found


lease = None
server = None
added = []
relays = set()


def link_destination(eth_dst, ip_dst, chaddr):
    """How the reply was addressed on the link: `broadcast`; `unicast` to an address this
    namespace holds (a relay's, or the client's own in RENEWING), whose MAC the server may take
    from chaddr or learn by ARP, equally right on a real link where the two are the same;
    otherwise `chaddr`, or the MAC it went to (which no real client would receive)."""
    if eth_dst == b"\xff" * 6:
        return "broadcast"
    if ip_dst in added or ip_dst in relays:
        return "unicast"
    if eth_dst == chaddr:
        return "chaddr"
    return mac_text(eth_dst)


def forget():
    global lease, server
    lease = None
    server = None
    for address in added:
        subprocess.run(["ip", "addr", "del", address + "/32", "dev", interface], stderr=subprocess.DEVNULL)
    del added[:]


def resolve(value):
    if value == "lease":
        return lease or "0.0.0.0"
    if value == "server":
        return server or server_ip
    return value


def hold(address):
    """Puts a client's address on the interface, so the server's ARP for it is answered."""
    if address in ("0.0.0.0", None) or address in added:
        return
    subprocess.run(["ip", "addr", "add", address + "/32", "dev", interface], check=True)
    added.append(address)


def run_step(name, fields):
    global lease, server
    mac = bytes.fromhex(fields["mac"].replace(":", ""))
    xid = int(fields["xid"], 16)
    ciaddr = resolve(fields.get("ciaddr", "0.0.0.0"))
    giaddr = fields.get("giaddr", "0.0.0.0")
    if giaddr != "0.0.0.0":
        relays.add(giaddr)
    bootp = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1,
        1,
        6,
        1 if giaddr != "0.0.0.0" else 0,
        xid,
        int(fields.get("secs", "0")),
        int(fields.get("flags", "0")),
        socket.inet_aton(ciaddr),
        socket.inet_aton("0.0.0.0"),
        socket.inet_aton("0.0.0.0"),
        socket.inet_aton(giaddr),
        mac.ljust(16, b"\0"),
        b"",
        b"",
    )
    bootp += bytes([99, 130, 83, 99])
    if int(fields["msg"]) != 0:
        bootp += option(53, bytes([int(fields["msg"])]))
    if "opt50" in fields:
        bootp += option(50, socket.inet_aton(resolve(fields["opt50"])))
    if "opt54" in fields:
        bootp += option(54, socket.inet_aton(resolve(fields["opt54"])))
    if fields.get("opts", "-") != "-":
        bootp += bytes.fromhex(fields["opts"])
    if fields.get("relay82", "-") != "-":
        bootp += option(82, bytes.fromhex(fields["relay82"]))
    bootp += b"\xff"
    bootp = bootp.ljust(300, b"\0")
    # A client with an address (RENEWING, REBINDING, INFORM from a static address) holds it,
    # whichever way the request goes. A DHCPLEASEQUERY's ciaddr is the address asked about.
    if int(fields["msg"]) != 10:
        hold(ciaddr)
    ip_src = fields.get("ipsrc", "0")
    if ip_src == "ciaddr":
        ip_src = ciaddr
    elif ip_src == "giaddr":
        ip_src = giaddr
    elif ip_src == "0":
        ip_src = "0.0.0.0"
    if fields.get("ipdst", "broadcast") == "server":
        ip_dst, eth_dst = server_ip, bytes.fromhex(server_mac.replace(":", ""))
    else:
        ip_dst, eth_dst = "255.255.255.255", b"\xff" * 6
    # A relay agent sends from its own interface; a client from its chaddr.
    eth_src = own_mac if giaddr != "0.0.0.0" else mac
    drain()
    raw.send(
        frame(
            eth_dst,
            eth_src,
            ip_src,
            ip_dst,
            int(fields.get("sport", "68")),
            int(fields.get("dport", "67")),
            bootp,
        )
    )
    deadline = time.time() + float(fields.get("wait", "2.0"))
    while True:
        remaining = deadline - time.time()
        if remaining <= 0 or not select.select([raw], [], [], remaining)[0]:
            print("result %s none" % name, flush=True)
            return
        parsed = parse_reply(raw.recv(65536))
        if parsed is None:
            continue
        eth_dst_seen, ip_dst_seen, dport, reply = parsed
        if len(reply) < 240 or reply[0] != 2 or struct.unpack("!I", reply[4:8])[0] != xid:
            continue
        options = reply_options(reply)
        message = options.get(53, b"\0")[0]
        yiaddr = socket.inet_ntoa(reply[16:20])
        # A BOOTREPLY (no option 53) binds the client too.
        if message in (0, 2, 5) and yiaddr != "0.0.0.0":
            lease = yiaddr
        if message in (2, 5) and len(options.get(54, b"")) == 4:
            server = socket.inet_ntoa(options[54])
        print(
            "result %s %s %s %d %s"
            % (name, link_destination(eth_dst_seen, ip_dst_seen, mac), ip_dst_seen, dport, reply.hex()),
            flush=True,
        )
        return


for line in open(steps_file):
    words = line.split()
    if not words:
        continue
    if words[0] == "exchange":
        forget()
    elif words[0] == "sleep":
        time.sleep(float(words[1]))
    elif words[0] == "step":
        run_step(words[1], dict(word.split("=", 1) for word in words[2:]))
forget()
