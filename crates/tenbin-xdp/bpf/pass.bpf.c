// SPDX-License-Identifier: Apache-2.0
/* XDP_PASS for the peer end of a veth: frames sent into a veth with XDP_TX/XDP_REDIRECT are
 * only delivered when the receiving end runs an XDP program. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int tenbin_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
