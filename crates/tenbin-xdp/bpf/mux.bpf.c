// SPDX-License-Identifier: Apache-2.0
/* tenbin Mux: XDP VIP load balancer (Ananta/Katran shape).
 *
 * Per packet: Ethernet (+1 VLAN tag) -> IPv4/IPv6 -> TCP/UDP (or an ICMP error about a flow)
 * -> VIP lookup (addr, port, proto), then (addr, 0, proto) -> flow table or Maglev ring ->
 * backend -> IPIP/GRE encapsulation or L2 DSR -> XDP_TX.
 *
 * Policies (each counted in `stats`):
 *  - not IPv4/IPv6, not a VIP, non-error ICMP, other L4 protocols, IPv6 extension headers:
 *    XDP_PASS (the host's business);
 *  - IPv4 fragments: XDP_PASS (ports are unknown, so they cannot be hashed like their flow);
 *  - IPv4 options are parsed over and forwarded unchanged inside the tunnel;
 *  - truncated or inconsistent IP/L4 headers: XDP_DROP;
 *  - an encapsulated packet larger than the MTU: ICMP frag-needed (IPv4 with DF) or ICMPv6
 *    packet-too-big sent back with XDP_TX; IPv4 without DF: dropped;
 *  - ICMP errors (dest-unreachable, time-exceeded, packet-too-big) quoting a VIP flow go to
 *    that flow's backend: the key is the quoted header reversed, so path-MTU discovery works;
 *  - one arm: XDP_TX out of the receiving interface; two arms (config.egress): XDP_REDIRECT
 *    to tx_port[0] with the egress interface's source MAC (ICMP replies still go back out of
 *    the receiving interface);
 *  - TCP SYN always consults the ring (a draining backend gets no new flows), RST inserts
 *    nothing, UDP entries older than udp_idle_ns are re-picked, and new inserts are capped
 *    per CPU per second (above the cap, flows are still forwarded by the ring, statelessly).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VIPS * 4);
	__type(key, struct vip_key);
	__type(value, struct vip_info);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct ring_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RING_SIZE);
	__type(key, __u32);
	__type(value, __u32);
};

/* One Maglev ring per VIP id; the control plane swaps a whole new inner map in (a hash of
 * maps, so a VIP without eligible backends can have no ring at all). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, MAX_VIPS);
	__type(key, __u32);
	__array(values, struct ring_inner);
} rings SEC(".maps");

/* Shared table, per-CPU LRU lists: a flow seen by another CPU (RSS change) is still found. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mux_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_VIPS);
	__type(key, __u32);
	__type(value, struct counters);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct counters);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate);
} rate SEC(".maps");

/* Two-arm mode: the egress interface (slot 0). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} tx_port SEC(".maps");

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

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline void count_traffic(void *map, __u32 idx, __u32 bytes, int new_flow)
{
	struct counters *c = bpf_map_lookup_elem(map, &idx);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
		c->new_flows += new_flow;
	}
}

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

static __always_inline struct vip_info *find_vip(struct pkt *p)
{
	struct vip_key vk = {};
#pragma unroll
	for (int i = 0; i < 4; i++)
		vk.addr[i] = p->key.dst[i];
	vk.port = p->key.ports & 0xffff;
	vk.proto = p->key.fam_proto & 0xff;
	vk.family = p->key.fam_proto >> 8;
	struct vip_info *vi = bpf_map_lookup_elem(&vips, &vk);
	if (vi)
		return vi;
	vk.port = 0;
	return bpf_map_lookup_elem(&vips, &vk);
}

/* May this new flow take a flow-table entry? Caps inserts per CPU per second. */
static __always_inline int may_insert(struct mux_config *cfg, __u64 now)
{
	if (!cfg->flow_cap)
		return 1;
	__u32 zero = 0;
	struct rate *r = bpf_map_lookup_elem(&rate, &zero);
	if (!r)
		return 0;
	if (now - r->window_ns >= 1000000000ull) {
		r->window_ns = now;
		r->count = 0;
	}
	if (r->count >= cfg->flow_cap) {
		count(ST_FLOW_CAP);
		return 0;
	}
	r->count += 1;
	return 1;
}

/* Time for UDP idle expiry and the insert-rate window: the coarse clock (a few ms of
 * resolution) costs a fraction of the precise one, and both uses are in seconds. */

/* Chooses the backend. *is_new says whether a flow entry was created. The flow hash is only
 * computed when needed (ring lookup, or later for the outer source): a hit skips it. */
static __always_inline struct backend *pick(struct pkt *p, struct vip_info *vi,
					    struct mux_config *cfg, __u32 *hash, int *have_hash,
					    __u32 *id, int *is_new)
{
	__u8 proto = p->key.fam_proto & 0xff;
	int syn = !p->icmp_err && proto == IPPROTO_TCP && (p->tcp_flags & TCP_SYN) &&
		  !(p->tcp_flags & TCP_ACK);
	int rst = !p->icmp_err && proto == IPPROTO_TCP && (p->tcp_flags & TCP_RST);
	*is_new = 0;
	if (!syn) {
		struct flow_val *fv = bpf_map_lookup_elem(&flows, &p->key);
		if (fv) {
			/* An entry whose backend record is gone (removed or down) is re-picked. */
			__u32 fid = fv->backend;
			struct backend *fb = bpf_map_lookup_elem(&backends, &fid);
			if (fb && fb->family) {
				if (proto != IPPROTO_UDP) {
					count(ST_LRU_HIT);
					*id = fid;
					return fb;
				}
				__u64 now = bpf_ktime_get_coarse_ns();
				if (now - fv->seen_ns <= cfg->udp_idle_ns) {
					fv->seen_ns = now;
					count(ST_LRU_HIT);
					*id = fid;
					return fb;
				}
			}
		}
		count(ST_LRU_MISS_OTHER);
	} else {
		count(ST_LRU_MISS_SYN);
	}
	__u32 vid = vi->vip_id;
	void *ring = bpf_map_lookup_elem(&rings, &vid);
	if (!ring) {
		count(ST_DROP_NO_RING);
		return 0;
	}
	*hash = flow_hash(&p->key, cfg->seed);
	*have_hash = 1;
	__u32 slot = *hash % RING_SIZE;
	__u32 *b = bpf_map_lookup_elem(ring, &slot);
	if (!b) {
		count(ST_DROP_NO_BACKEND);
		return 0;
	}
	__u32 bid = *b;
	struct backend *be = bpf_map_lookup_elem(&backends, &bid);
	if (!be || !be->family) {
		count(ST_DROP_NO_BACKEND);
		return 0;
	}
	*id = bid;
	if (!rst && !p->icmp_err) {
		__u64 now = bpf_ktime_get_coarse_ns();
		if (may_insert(cfg, now)) {
			struct flow_val nv = { .backend = bid, .seen_ns = now };
			bpf_map_update_elem(&flows, &p->key, &nv, BPF_ANY);
			*is_new = 1;
		}
	}
	return be;
}

static __always_inline void copy_l2(void *dst, void *src, __u32 l3_off)
{
	if (l3_off == 18)
		__builtin_memcpy(dst, src, 18);
	else
		__builtin_memcpy(dst, src, 14);
}

static __always_inline void set_ethertype(void *data, __u32 l3_off, __u16 type)
{
	/* The ethertype is the last two bytes of the L2 header, with or without a VLAN tag. */
	__be16 *t = data + (l3_off == 18 ? 16 : 12);
	*t = bpf_htons(type);
}

static __always_inline __u32 sum16(const void *p, int words)
{
	const __u16 *w = p;
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < words; i++)
		s += w[i];
	return s;
}

#include "mux_tx.h"

SEC("xdp")
int tenbin_mux(struct xdp_md *ctx)
{
	struct pkt p = {};
	__u32 zero = 0;
	count(ST_RX);
	int act = parse(ctx, &p);
	if (act >= 0)
		return act;
	struct vip_info *vi = find_vip(&p);
	if (!vi) {
		count(ST_PASS_NOT_VIP);
		return XDP_PASS;
	}
	struct mux_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return XDP_PASS;
	__u32 hash = 0, id = 0;
	int have_hash = 0, is_new = 0;
	struct backend *be = pick(&p, vi, cfg, &hash, &have_hash, &id, &is_new);
	if (!be)
		return XDP_DROP;
	if (!have_hash && vi->mode != MODE_DSR)
		hash = flow_hash(&p.key, cfg->seed);
	if (p.icmp_err)
		count(ST_ICMP_ERR_ROUTED);
	return forward(ctx, &p, vi, cfg, be, id, hash, is_new);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
