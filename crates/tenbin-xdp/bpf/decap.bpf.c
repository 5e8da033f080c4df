// SPDX-License-Identifier: Apache-2.0
/* tenbin host agent: XDP decapsulation of what the Mux sends (IPIP, 4in6/6in4, GRE without
 * options), so a backend needs no kernel tunnel module. The inner packet, addressed to a VIP
 * that the agent put on `lo`, continues up the stack; the reply leaves directly (DSR).
 *
 * Only outer packets whose destination is in `locals` are decapsulated (an empty table means
 * every tunnel packet is ours). Anything else passes untouched. */
#include "common.h"

struct local_key {
	__u32 addr[4];
	__u32 family;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct local_key);
	__type(value, __u8);
} locals SEC(".maps");

/* index 0: decapsulated, 1: passed (not a tunnel), 2: dropped (bad inner), 3: not local */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} decap_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} decap_config SEC(".maps"); /* [0]: 1 when `locals` must be checked */

static __always_inline int done(__u32 idx, int act)
{
	__u64 *v = bpf_map_lookup_elem(&decap_stats, &idx);
	if (v)
		*v += 1;
	return act;
}

static __always_inline int is_local(struct local_key *k)
{
	__u32 zero = 0;
	__u32 *check = bpf_map_lookup_elem(&decap_config, &zero);
	if (!check || !*check)
		return 1;
	return bpf_map_lookup_elem(&locals, k) != 0;
}

/* Strips `outer` bytes after an L2 header of constant length l2. */
static __always_inline int strip(struct xdp_md *ctx, const __u32 l2, __u32 outer, __u16 inner_type)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (outer != 20 && outer != 24 && outer != 40 && outer != 44)
		return done(2, XDP_DROP);
	if (data + l2 + 44 > end)
		return done(2, XDP_DROP);
	/* Move the L2 header forward so it ends where the inner IP header begins. */
	__u8 l2hdr[18];
	__builtin_memcpy(l2hdr, data, 18);
	__be16 *type = (void *)l2hdr + l2 - 2;
	*type = bpf_htons(inner_type);
	if (outer == 20)
		__builtin_memcpy(data + 20, l2hdr, l2);
	else if (outer == 24)
		__builtin_memcpy(data + 24, l2hdr, l2);
	else if (outer == 40)
		__builtin_memcpy(data + 40, l2hdr, l2);
	else
		__builtin_memcpy(data + 44, l2hdr, l2);
	if (bpf_xdp_adjust_head(ctx, (int)outer))
		return done(2, XDP_DROP);
	return done(0, XDP_PASS);
}

static __always_inline int decap_at(struct xdp_md *ctx, const __u32 l2, __u16 eth_type)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	void *ip = data + l2;
	struct local_key lk = {};
	__u8 proto;
	__u32 outer;
	if (eth_type == ETH_P_IP) {
		struct iphdr *h = ip;
		if ((void *)(h + 1) > end)
			return done(1, XDP_PASS);
		if (h->ihl != 5 || (h->frag_off & bpf_htons(0x3fff)))
			return done(1, XDP_PASS);
		proto = h->protocol;
		outer = 20;
		lk.addr[0] = bpf_ntohl(h->daddr);
		lk.family = 4;
	} else {
		struct ipv6hdr *h = ip;
		if ((void *)(h + 1) > end)
			return done(1, XDP_PASS);
		proto = h->nexthdr;
		outer = 40;
#pragma unroll
		for (int i = 0; i < 4; i++)
			lk.addr[i] = bpf_ntohl(h->daddr.in6_u.u6_addr32[i]);
		lk.family = 6;
	}
	__u16 inner_type;
	if (proto == IPPROTO_IPIP) {
		inner_type = ETH_P_IP;
	} else if (proto == IPPROTO_IPV6) {
		inner_type = ETH_P_IPV6;
	} else if (proto == IPPROTO_GRE_) {
		__be16 *g = ip + outer;
		if ((void *)(g + 2) > end)
			return done(1, XDP_PASS);
		if (g[0] != 0) /* checksum, key, sequence or a version we do not speak */
			return done(1, XDP_PASS);
		if (g[1] == bpf_htons(ETH_P_IP))
			inner_type = ETH_P_IP;
		else if (g[1] == bpf_htons(ETH_P_IPV6))
			inner_type = ETH_P_IPV6;
		else
			return done(1, XDP_PASS);
		outer += 4;
	} else {
		return done(1, XDP_PASS);
	}
	if (!is_local(&lk))
		return done(3, XDP_PASS);
	return strip(ctx, l2, outer, inner_type);
}

SEC("xdp")
int tenbin_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return done(1, XDP_PASS);
	__u16 type = bpf_ntohs(eth->h_proto);
	if (type == ETH_P_8021Q_ || type == ETH_P_8021AD_) {
		__be16 *inner = data + sizeof(*eth) + 2;
		if ((void *)(inner + 1) > end)
			return done(1, XDP_PASS);
		type = bpf_ntohs(*inner);
		if (type != ETH_P_IP && type != ETH_P_IPV6)
			return done(1, XDP_PASS);
		return decap_at(ctx, 18, type);
	}
	if (type != ETH_P_IP && type != ETH_P_IPV6)
		return done(1, XDP_PASS);
	return decap_at(ctx, 14, type);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
