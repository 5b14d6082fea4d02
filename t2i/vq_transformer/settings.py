"""How a token transformer samples (t2i.settings)."""

from __future__ import annotations

from dataclasses import dataclass

from t2i.settings import MAX_GUIDANCE, Settings, setting


@dataclass
class TokenSamplingSettings(Settings):
    """How a token transformer samples."""

    guidance: float = setting(
        3.0, "classifier-free guidance on the logits: l = l_u + g (l_c − l_u); 1 = off", 0, MAX_GUIDANCE
    )
    temperature: float = setting(1.0, "softmax temperature: below 1 sharper, above 1 more varied", 0.05, 5)
    top_k: int = setting(0, "sample among the k most likely codes; 0 = all of them", 0, 65536)
    top_p: float = setting(1.0, "sample among the most likely codes that hold this much probability (nucleus)", 0.01, 1)
