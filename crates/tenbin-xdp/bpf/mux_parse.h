/* SPDX-License-Identifier: Apache-2.0 */
/* The Mux's parser: Ethernet (+1 VLAN tag), IPv4/IPv6, TCP/UDP ports, and ICMP errors whose
 * quoted header names a flow. Included once by mux.bpf.c after the maps and count(). */

/* What parsing found out about a packet. */
struct pkt {
	struct flow_key key;
	__u32 l3_off;   /* 14 or 18 */
	__u32 ip_len;   /* bytes from the IP header to the end of the frame */
	__u8 family;    /* of the outer (received) IP header */
	__u8 tcp_flags;
	__u8 icmp_err;  /* the key comes from a quoted header */
	__u8 df;        /* IPv4 don't-fragment */
	__u8 opts;      /* IPv4 header has options */
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* Reads the ports of a TCP/UDP header at l4 into key->ports; swap: the header is quoted from a
 * reply, so its source is the VIP side. Returns -1 when truncated. */
static __always_inline int read_ports(void *l4, void *end, __u8 proto, struct pkt *p, int swap)
{
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -2;
	/* Both TCP and UDP start with the two ports; an ICMP error quotes at least 8 bytes. */
	struct udphdr *u = l4;
	if ((void *)(u + 1) > end)
		return -1;
	__u16 s = bpf_ntohs(u->source), d = bpf_ntohs(u->dest);
	if (swap) {
		p->key.ports = ((__u32)d << 16) | s;
	} else {
		p->key.ports = ((__u32)s << 16) | d;
		if (proto == IPPROTO_TCP) {
			struct tcphdr *t = l4;
			if ((void *)(t + 1) > end)
				return -1;
			p->tcp_flags = ((__u8 *)t)[13];
		}
	}
	return 0;
}

/* Parses an IPv4 header at ip; swap for a quoted (reply-direction) header. */
static __always_inline int parse_v4(void *ip, void *end, struct pkt *p, int swap, void **l4)
{
	struct iphdr *h = ip;
	if ((void *)(h + 1) > end)
		return -1;
	__u32 ihl = h->ihl;
	if (ihl < 5 || h->version != 4)
		return -1;
	if (!swap) {
		if (h->frag_off & bpf_htons(0x3fff))
			return -3; /* MF set or offset != 0 */
		p->df = (h->frag_off & bpf_htons(0x4000)) != 0;
		p->opts = ihl > 5;
	}
	*l4 = ip + ihl * 4;
	if (*l4 > end)
		return -1;
	__u32 s = bpf_ntohl(h->saddr), d = bpf_ntohl(h->daddr);
	p->key.src[0] = swap ? d : s;
	p->key.dst[0] = swap ? s : d;
	p->key.fam_proto = (4 << 8) | h->protocol;
	return h->protocol;
}

static __always_inline int parse_v6(void *ip, void *end, struct pkt *p, int swap, void **l4)
{
	struct ipv6hdr *h = ip;
	if ((void *)(h + 1) > end)
		return -1;
	if (h->version != 6)
		return -1;
	*l4 = ip + sizeof(*h);
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 s = bpf_ntohl(h->saddr.in6_u.u6_addr32[i]);
		__u32 d = bpf_ntohl(h->daddr.in6_u.u6_addr32[i]);
		p->key.src[i] = swap ? d : s;
		p->key.dst[i] = swap ? s : d;
	}
	p->key.fam_proto = (6 << 8) | h->nexthdr;
	return h->nexthdr;
}

/* Fills p from the frame. Returns an XDP action to take now, or -1 to go on forwarding. */
static __always_inline int parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end) {
		count(ST_PASS_NOT_IP);
		return XDP_PASS;
	}
	__u16 proto = eth->h_proto;
	p->l3_off = sizeof(*eth);
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		__be16 *inner = data + sizeof(*eth) + 2;
		if ((void *)(inner + 1) > end) {
			count(ST_PASS_NOT_IP);
			return XDP_PASS;
		}
		proto = *inner;
		p->l3_off = sizeof(*eth) + 4;
	}
	void *ip = data + p->l3_off;
	void *l4 = 0;
	int l4proto;
	if (proto == bpf_htons(ETH_P_IP)) {
		p->family = 4;
		l4proto = parse_v4(ip, end, p, 0, &l4);
		if (l4proto == -3) {
			count(ST_PASS_FRAGMENT);
			return XDP_PASS;
		}
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		p->family = 6;
		l4proto = parse_v6(ip, end, p, 0, &l4);
	} else {
		count(ST_PASS_NOT_IP);
		return XDP_PASS;
	}
	if (l4proto < 0) {
		count(ST_DROP_MALFORMED);
		return XDP_DROP;
	}
	p->ip_len = end - ip;
	int r = read_ports(l4, end, l4proto, p, 0);
	if (r == -1) {
		count(ST_DROP_MALFORMED);
		return XDP_DROP;
	}
	if (r == 0)
		return -1;

	/* ICMP: only errors quoting a flow are ours. */
	__u8 *icmp = l4;
	if ((void *)(icmp + 8) > end) {
		if (l4proto == IPPROTO_ICMP || l4proto == IPPROTO_ICMPV6) {
			count(ST_DROP_MALFORMED);
			return XDP_DROP;
		}
		count(ST_PASS_OTHER_PROTO);
		return XDP_PASS;
	}
	void *quoted = icmp + 8;
	int qproto;
	if (l4proto == IPPROTO_ICMP && p->family == 4) {
		if (icmp[0] != ICMP_DEST_UNREACH && icmp[0] != ICMP_TIME_EXCEEDED) {
			count(ST_PASS_ICMP);
			return XDP_PASS;
		}
		qproto = parse_v4(quoted, end, p, 1, &l4);
	} else if (l4proto == IPPROTO_ICMPV6 && p->family == 6) {
		if (icmp[0] < 1 || icmp[0] > 4) {
			count(ST_PASS_ICMP);
			return XDP_PASS;
		}
		qproto = parse_v6(quoted, end, p, 1, &l4);
	} else {
		count(ST_PASS_OTHER_PROTO);
		return XDP_PASS;
	}
	if (qproto < 0 || read_ports(l4, end, qproto, p, 1) != 0) {
		count(ST_DROP_MALFORMED);
		return XDP_DROP;
	}
	p->icmp_err = 1;
	return -1;
}
