"""Autoregressive generation: the per-step cells over folded weights (stepper), the sampling loop over any step
function (sampling), the in-graph codec and `generate` signature (endpoint), and sampling from runs and exports
(generate)."""
