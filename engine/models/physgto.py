"""PhysGTO: flux-oriented message passing plus attention through a few learned tokens.

Local physics travels along mesh edges as "fluxes"; global coupling (pressure is global in
incompressible flow) travels through M learned tokens that gather from all nodes, talk among
themselves and are read back by every node, at O(N·M·width) cost, linear in the mesh size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import scaled_dot_product_attention
from torch_geometric.utils import to_dense_batch

from engine.models.checks import check_edges, check_shape
from engine.models.layers import CheckpointedBlocks, mlp, scatter_mean


class _FluxMessagePassing(nn.Module):
    """Edge MLP → (outgoing, incoming) halves, averaged onto senders and receivers."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.edge_mlp = nn.Sequential(nn.Linear(3 * dim, dim), nn.GELU(), nn.Linear(dim, 2 * dim))
        self.node_update = nn.Linear(2 * dim, dim)

    def forward(self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        sender, receiver = edge_index
        n = h.shape[0]
        # the first layer's node blocks act on N nodes before the gather, not on E edges
        first = self.edge_mlp[0]
        w_s, w_r, w_e = first.weight.split(h.shape[1], dim=1)
        pre = nn.functional.linear(e, w_e, first.bias)
        pre = pre + nn.functional.linear(h, w_s).index_select(0, sender)
        pre = pre + nn.functional.linear(h, w_r).index_select(0, receiver)
        outgoing, incoming = self.edge_mlp[1:](pre).chunk(2, dim=1)
        gathered = torch.cat(
            [scatter_mean(outgoing, sender, n), scatter_mean(incoming, receiver, n)], dim=1
        )
        return self.node_update(gathered)


class _TokenAttention(nn.Module):
    """Tokens attend over the nodes of their graph, self-attend, then nodes read back."""

    def __init__(self, dim: int, heads: int, num_tokens: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.tokens = nn.Parameter(torch.randn(num_tokens, dim) * dim**-0.5)
        self.token_query = nn.Linear(dim, dim, bias=False)
        self.node_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.token_norm = nn.LayerNorm(dim)
        self.token_mixer = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.node_query = nn.Linear(dim, dim, bias=False)
        self.token_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, dim] → [B, heads, L, head_dim]
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)

    def forward(self, h: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
        if batch is None:
            dense, mask = h[None], None
        else:
            dense, mask = to_dense_batch(h, batch)  # [B, Nmax, dim]; padding masked out
        b = dense.shape[0]
        tokens = self.tokens.to(h.dtype).expand(b, -1, -1)
        k, v = self.node_kv(dense).chunk(2, dim=-1)
        attn_mask = None if mask is None else mask[:, None, None, :]
        gathered = scaled_dot_product_attention(
            self._split(self.token_query(tokens)),
            self._split(k),
            self._split(v),
            attn_mask=attn_mask,
        )
        z = tokens + self._merge(gathered)
        zn = self.token_norm(z)
        z = z + self.token_mixer(zn, zn, zn, need_weights=False)[0]
        k, v = self.token_kv(z).chunk(2, dim=-1)
        read = self._merge(
            scaled_dot_product_attention(
                self._split(self.node_query(dense)), self._split(k), self._split(v)
            )
        )
        read = self.proj(read)
        return read[0] if mask is None else read[mask]


class _Block(nn.Module):
    """Pre-LayerNorm residual block: flux message passing, token attention, feed-forward."""

    def __init__(self, dim: int, heads: int, num_tokens: int) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.flux = _FluxMessagePassing(dim)
        self.attention = _TokenAttention(dim, heads, num_tokens)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(
        self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor | None
    ) -> torch.Tensor:
        h = h + self.flux(self.norm1(h), e, edge_index)
        h = h + self.attention(self.norm2(h), batch)
        return h + self.ffn(self.norm3(h))


class PhysGTO(CheckpointedBlocks):
    """Unified graph embedding → ``num_blocks`` blocks → time-stepping decoder.

    The embedding fuses the flow state with the static attributes (node type, conditions such as
    Re and the time step, Fourier features of the coordinates). The decoder returns
    ``gain ⊙ MLP(h)`` with a learned per-output gain initialised at ``gain_init``: the caller adds
    it to the state, so an untrained model starts close to "nothing changes".
    """

    def __init__(
        self,
        *,
        state_in: int,
        attr_in: int,
        edge_in: int,
        out: int,
        dim: int = 128,
        num_blocks: int = 4,
        heads: int = 8,
        num_tokens: int = 64,
        gain_init: float = 0.1,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.state_in, self.attr_in, self.edge_in, self.out = state_in, attr_in, edge_in, out
        self.state_embed = mlp(state_in, dim, dim)
        self.attr_embed = mlp(attr_in, dim, dim)
        self.fuse = nn.Linear(2 * dim, dim)
        self.edge_embed = mlp(edge_in, dim, dim)
        self.blocks = nn.ModuleList(_Block(dim, heads, num_tokens) for _ in range(num_blocks))
        self.decoder = nn.Sequential(nn.LayerNorm(dim), mlp(dim, dim, out, layer_norm=False))
        self.gain = nn.Parameter(torch.full((out,), gain_init))

    def forward(
        self,
        state: torch.Tensor,
        attributes: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        batch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict per-node outputs.

        Args:
            state: [N, state_in] normalised flow state.
            attributes: [N, attr_in] static node attributes.
            edge_index: [2, E] sender → receiver; edge_attr: [E, edge_in].
            batch: [N] graph id of each node, sorted (a torch-geometric ``Batch``), or None
                for a single graph. Tokens only attend within their own graph.

        Returns:
            [N, out].
        """
        n = state.shape[0]
        check_shape("state", state, (None, self.state_in))
        check_shape("attributes", attributes, (n, self.attr_in))
        check_edges("edge_index", edge_index, n)
        check_shape("edge_attr", edge_attr, (edge_index.shape[1], self.edge_in))
        if batch is not None:
            check_shape("batch", batch, (n,))
        h = self.fuse(torch.cat([self.state_embed(state), self.attr_embed(attributes)], dim=1))
        e = self.edge_embed(edge_attr)
        for block in self.blocks:
            h = self.run(block, h, e, edge_index, batch)
        return self.gain * self.decoder(h)
