"""MeshGraphNet (Pfaff et al. 2021): encode–process–decode message passing on the mesh."""

from __future__ import annotations

import torch
from torch import nn

from engine.models.checks import check_edges, check_shape
from engine.models.layers import CheckpointedBlocks, mlp, scatter_sum


class _Block(nn.Module):
    """One message-passing step with its own weights; residual edge and node updates."""

    def __init__(self, latent: int) -> None:
        super().__init__()
        self.edge_mlp = mlp(3 * latent, latent, latent)
        self.node_mlp = mlp(2 * latent, latent, latent)

    def forward(
        self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sender, receiver = edge_index
        # First layer of MLP(e, h_s, h_r) split by input block: the node parts are projected on
        # N nodes, then gathered, instead of on E ≈ 6N edges. Same weights, ~40 % fewer FLOPs.
        first = self.edge_mlp[0]
        w_e, w_s, w_r = first.weight.split(e.shape[1], dim=1)
        pre = nn.functional.linear(e, w_e, first.bias)
        pre = pre + nn.functional.linear(h, w_s).index_select(0, sender)
        pre = pre + nn.functional.linear(h, w_r).index_select(0, receiver)
        e = e + self.edge_mlp[1:](pre)
        incoming = scatter_sum(e, receiver, h.shape[0])  # sum aggregation, as in the paper
        h = h + self.node_mlp(torch.cat([h, incoming], dim=1))
        return h, e


class MeshGraphNet(CheckpointedBlocks):
    """Encode node and edge features, run ``num_blocks`` message-passing steps, decode per node.

    Encoder and processor MLPs have two hidden layers and LayerNorm; the decoder has none, so its
    output can take any scale (it predicts normalised targets).
    """

    def __init__(
        self,
        *,
        node_in: int,
        edge_in: int,
        out: int,
        latent: int = 128,
        num_blocks: int = 15,
    ) -> None:
        super().__init__()
        self.node_in, self.edge_in, self.out = node_in, edge_in, out
        self.node_encoder = mlp(node_in, latent, latent)
        self.edge_encoder = mlp(edge_in, latent, latent)
        self.blocks = nn.ModuleList(_Block(latent) for _ in range(num_blocks))
        self.decoder = mlp(latent, latent, out, layer_norm=False)

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        """Predict per-node outputs.

        Args:
            x: [N, node_in] node features.
            edge_index: [2, E] sender (row 0) and receiver (row 1) of each directed edge.
            edge_attr: [E, edge_in] edge features.

        Returns:
            [N, out].
        """
        check_shape("x", x, (None, self.node_in))
        check_edges("edge_index", edge_index, x.shape[0])
        check_shape("edge_attr", edge_attr, (edge_index.shape[1], self.edge_in))
        h, e = self.node_encoder(x), self.edge_encoder(edge_attr)
        for block in self.blocks:
            h, e = self.run(block, h, e, edge_index)
        return self.decoder(h)
