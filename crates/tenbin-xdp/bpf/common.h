/* SPDX-License-Identifier: Apache-2.0 */
/* Shared definitions of tenbin's BPF programs. Every struct here has a #[repr(C)] twin in
 * crates/tenbin-xdp/src/abi.rs; the Rust tests check the sizes. Multi-byte fields hold host-order
 * values unless named *_be. */
#ifndef TENBIN_COMMON_H
#define TENBIN_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define RING_SIZE 65537
#define MAX_VIPS 512
#define MAX_BACKENDS 4096
#define NO_BACKEND 0xffffffffu

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IPPROTO_GRE_ 47

/* linux/icmp.h pulls in libc socket headers that break -target bpf: the few bits we need. */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_FRAG_NEEDED 4
struct icmp4hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 unused;
	__be16 mtu;
};

#define MODE_IPIP 1
#define MODE_GRE 2
#define MODE_DSR 3

/* The ten words tenbin_core::flow hashes (see flow.rs): also the flow-table key. */
struct flow_key {
	__u32 src[4];
	__u32 dst[4];
	__u32 ports;     /* src_port << 16 | dst_port */
	__u32 fam_proto; /* family << 8 | proto */
};

struct flow_val {
	__u32 backend;
	__u32 _pad;
	__u64 seen_ns;
};

struct vip_key {
	__u32 addr[4];
	__u16 port; /* 0: all ports */
	__u8 proto;
	__u8 family; /* 4 or 6 */
};

struct vip_info {
	__u32 vip_id; /* index into rings and vip_stats */
	__u8 mode;
	__u8 flags;
	__u16 _pad;
};

struct backend {
	__u32 addr[4];
	__u8 family; /* 0: unused slot */
	__u8 flags;
	__u8 mac[6]; /* next hop on the segment: the backend itself in one-arm setups */
};

struct mux_config {
	__u32 seed;
	__u32 mtu;           /* largest outer IP packet */
	__u64 udp_idle_ns;   /* UDP flow entries older than this are re-picked */
	__u64 flow_cap;      /* new flow-table inserts per second per CPU, 0: unlimited */
	__u32 src4;          /* outer IPv4 source prefix */
	__u32 src4_mask;     /* bits of src4 kept; the others come from the flow hash */
	__u32 src6[4];       /* outer IPv6 source prefix */
	__u32 src6_mask;     /* applies to src6[3] */
	__u32 egress;        /* two arms: 1 = forwarded frames leave through tx_port[0] */
	__u8 egress_mac[6];  /* source MAC on the egress interface */
	__u8 _pad[2];
};

struct counters {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

struct rate {
	__u64 window_ns;
	__u64 count;
};

/* Indices of the per-CPU `stats` array; abi.rs names them. */
enum stat {
	ST_RX = 0,
	ST_TX,
	ST_PASS_NOT_IP,
	ST_PASS_NOT_VIP,
	ST_PASS_FRAGMENT,
	ST_PASS_OTHER_PROTO,
	ST_PASS_ICMP,
	ST_DROP_MALFORMED,
	ST_DROP_NO_RING,
	ST_DROP_NO_BACKEND,
	ST_DROP_ADJUST,
	ST_DROP_TOO_BIG_NODF,
	ST_ICMP_TOO_BIG,
	ST_LRU_HIT,
	ST_LRU_MISS_SYN,
	ST_LRU_MISS_OTHER,
	ST_FLOW_CAP,
	ST_ICMP_ERR_ROUTED,
	ST_DECAP,
	ST_REDIRECT,
	ST_MAX,
};

static __always_inline __u32 rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* tenbin_core::flow::flow_hash, word for word. */
static __always_inline __u32 flow_hash(const struct flow_key *k, __u32 seed)
{
	const __u32 *w = (const __u32 *)k;
	__u32 h = seed;
#pragma unroll
	for (int i = 0; i < 10; i++) {
		__u32 x = w[i] * 0xcc9e2d51u;
		x = rotl32(x, 15);
		x *= 0x1b873593u;
		h ^= x;
		h = rotl32(h, 13);
		h = h * 5 + 0xe6546b64u;
	}
	h ^= 40;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
