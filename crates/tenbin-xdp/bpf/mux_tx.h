/* SPDX-License-Identifier: Apache-2.0 */
/* The Mux's transmit side: encapsulation, L2 DSR and ICMP too-big replies. Included once by
 * mux.bpf.c, after the maps and the parser. */

#define ICMP4_QUOTE 28 /* quoted IPv4 header (no options) + 8 bytes */
#define ICMP6_QUOTE 48 /* quoted IPv6 header + 8 bytes */

/* Makes `grow` bytes of room between the L2 header and the IP header. */
static __always_inline int push_head(struct xdp_md *ctx, int grow, const __u32 l3)
{
	if (bpf_xdp_adjust_head(ctx, -grow)) {
		count(ST_DROP_ADJUST);
		return -1;
	}
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 18 + grow > end)
		return -1;
	copy_l2(data, data + grow, l3);
	return 0;
}

/* Replaces the frame by an ICMP frag-needed / packet-too-big sent back to the client.
 * `mtu` is what the client may send so that the encapsulated packet fits. */
static __always_inline int too_big_at(struct xdp_md *ctx, struct pkt *p, __u32 mtu,
				      const __u32 l3)
{
	if (p->icmp_err || (p->family == 4 && p->opts)) {
		count(ST_DROP_TOO_BIG_NODF);
		return XDP_DROP;
	}
	if (p->family == 4 && !p->df) {
		count(ST_DROP_TOO_BIG_NODF);
		return XDP_DROP;
	}
	int grow = p->family == 4 ? (int)(sizeof(struct iphdr) + 8) : (int)(sizeof(struct ipv6hdr) + 8);
	if (push_head(ctx, grow, l3))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 18 + grow > end)
		return XDP_DROP;
	/* Back to the sender: swap the MACs. */
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);

	__u32 quote = p->family == 4 ? ICMP4_QUOTE : ICMP6_QUOTE;
	int keep = l3 + grow + quote;
	if (bpf_xdp_adjust_tail(ctx, keep - (int)(end - data))) {
		count(ST_DROP_ADJUST);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (p->family == 4) {
		struct iphdr *ip = data + l3;
		struct icmp4hdr *ic = (void *)(ip + 1);
		struct iphdr *q = (void *)(ic + 1);
		if ((void *)q + ICMP4_QUOTE > end)
			return XDP_DROP;
		struct iphdr h = {
			.version = 4,
			.ihl = 5,
			.tot_len = bpf_htons(sizeof(h) + 8 + ICMP4_QUOTE),
			.ttl = 64,
			.protocol = IPPROTO_ICMP,
			.saddr = q->daddr,
			.daddr = q->saddr,
		};
		h.check = csum_fold(sum16(&h, 10));
		*ip = h;
		struct icmp4hdr c = {
			.type = ICMP_DEST_UNREACH,
			.code = ICMP_FRAG_NEEDED,
		};
		c.mtu = bpf_htons(mtu);
		*ic = c;
		ic->checksum = csum_fold(sum16(ic, (8 + ICMP4_QUOTE) / 2));
	} else {
		struct ipv6hdr *ip = data + l3;
		struct icmp6hdr *ic = (void *)(ip + 1);
		struct ipv6hdr *q = (void *)(ic + 1);
		if ((void *)q + ICMP6_QUOTE > end)
			return XDP_DROP;
		__builtin_memset(ip, 0, sizeof(*ip));
		ip->version = 6;
		ip->payload_len = bpf_htons(8 + ICMP6_QUOTE);
		ip->nexthdr = IPPROTO_ICMPV6;
		ip->hop_limit = 64;
		ip->saddr = q->daddr;
		ip->daddr = q->saddr;
		__builtin_memset(ic, 0, 8);
		ic->icmp6_type = ICMPV6_PKT_TOOBIG;
		ic->icmp6_mtu = bpf_htonl(mtu);
		__u32 s = sum16(&ip->saddr, 16);
		s += bpf_htons(8 + ICMP6_QUOTE) + bpf_htons(IPPROTO_ICMPV6);
		s += sum16(ic, (8 + ICMP6_QUOTE) / 2);
		ic->icmp6_cksum = csum_fold(s);
	}
	count(ST_ICMP_TOO_BIG);
	count(ST_TX);
	return XDP_TX;
}

static __always_inline int encap_overhead(struct vip_info *vi, struct backend *be)
{
	return (be->family == 4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr)) +
	       (vi->mode == MODE_GRE ? 4 : 0);
}

/* Outer source: the configured prefix, host bits from the flow hash, so backend NICs can
 * spread flows by source (RSS) while all packets of one flow keep one source. */
static __always_inline int encap_at(struct xdp_md *ctx, struct pkt *p, struct vip_info *vi,
				    struct mux_config *cfg, struct backend *be, __u32 hash,
				    const __u32 l3)
{
	int gre = vi->mode == MODE_GRE;
	int outer4 = be->family == 4;
	int grow = encap_overhead(vi, be);
	__u8 mac[ETH_ALEN];
	__builtin_memcpy(mac, be->mac, ETH_ALEN);
	__u32 baddr[4];
	__builtin_memcpy(baddr, be->addr, sizeof(baddr));
	__u32 inner_len = p->ip_len;
	__u8 inner_proto = p->family == 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u16 gre_type = p->family == 4 ? ETH_P_IP : ETH_P_IPV6;

	if (push_head(ctx, grow, l3))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 18 + grow > end)
		return XDP_DROP;
	struct ethhdr *eth = data;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	set_ethertype(data, l3, outer4 ? ETH_P_IP : ETH_P_IPV6);

	void *ip = data + l3;
	__u8 proto = gre ? IPPROTO_GRE_ : inner_proto;
	void *after;
	if (outer4) {
		struct iphdr *o = ip;
		if ((void *)(o + 1) + 4 > end)
			return XDP_DROP;
		struct iphdr h = {
			.version = 4,
			.ihl = 5,
			.tot_len = bpf_htons(inner_len + grow),
			.ttl = 64,
			.protocol = proto,
			.saddr = bpf_htonl((cfg->src4 & cfg->src4_mask) | (hash & ~cfg->src4_mask)),
			.daddr = bpf_htonl(baddr[0]),
		};
		h.frag_off = bpf_htons(0x4000);
		h.check = csum_fold(sum16(&h, 10));
		*o = h;
		after = o + 1;
	} else {
		struct ipv6hdr *o = ip;
		if ((void *)(o + 1) + 4 > end)
			return XDP_DROP;
		__builtin_memset(o, 0, sizeof(*o));
		o->version = 6;
		o->payload_len = bpf_htons(inner_len + grow - sizeof(*o));
		o->nexthdr = proto;
		o->hop_limit = 64;
#pragma unroll
		for (int i = 0; i < 3; i++)
			o->saddr.in6_u.u6_addr32[i] = bpf_htonl(cfg->src6[i]);
		o->saddr.in6_u.u6_addr32[3] =
			bpf_htonl((cfg->src6[3] & cfg->src6_mask) | (hash & ~cfg->src6_mask));
#pragma unroll
		for (int i = 0; i < 4; i++)
			o->daddr.in6_u.u6_addr32[i] = bpf_htonl(baddr[i]);
		after = o + 1;
	}
	if (gre) {
		__be16 *g = after;
		g[0] = 0; /* no checksum, key or sequence number; version 0 */
		g[1] = bpf_htons(gre_type);
	}
	return XDP_TX;
}

/* The L2 header length is made a constant in each copy, so the verifier sees fixed packet
 * offsets. */
static __always_inline int too_big(struct xdp_md *ctx, struct pkt *p, __u32 mtu)
{
	if (p->l3_off == 18)
		return too_big_at(ctx, p, mtu, 18);
	return too_big_at(ctx, p, mtu, 14);
}

static __always_inline int encap(struct xdp_md *ctx, struct pkt *p, struct vip_info *vi,
				 struct mux_config *cfg, struct backend *be, __u32 hash)
{
	if (p->l3_off == 18)
		return encap_at(ctx, p, vi, cfg, be, hash, 18);
	return encap_at(ctx, p, vi, cfg, be, hash, 14);
}

static __always_inline int forward(struct xdp_md *ctx, struct pkt *p, struct vip_info *vi,
				   struct mux_config *cfg, struct backend *be, __u32 id, __u32 hash,
				   int is_new)
{
	__u32 bytes = p->ip_len;
	int act;
	if (vi->mode == MODE_DSR) {
		void *data = (void *)(long)ctx->data;
		void *end = (void *)(long)ctx->data_end;
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
		act = XDP_TX;
	} else {
		__u32 grow = encap_overhead(vi, be);
		if (p->ip_len + grow > cfg->mtu)
			return too_big(ctx, p, cfg->mtu > grow ? cfg->mtu - grow : 0);
		act = encap(ctx, p, vi, cfg, be, hash);
		if (act != XDP_TX)
			return act;
	}
	count_traffic(&vip_stats, vi->vip_id, bytes, is_new);
	count_traffic(&backend_stats, id, bytes, is_new);
	if (cfg->egress) {
		void *data = (void *)(long)ctx->data;
		void *end = (void *)(long)ctx->data_end;
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_source, cfg->egress_mac, ETH_ALEN);
		count(ST_REDIRECT);
		return bpf_redirect_map(&tx_port, 0, XDP_DROP);
	}
	count(ST_TX);
	return act;
}
