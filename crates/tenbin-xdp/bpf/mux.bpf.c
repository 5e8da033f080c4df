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

#include "mux_parse.h"

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
