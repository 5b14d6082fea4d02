"""t2i: text-to-image latent diffusion (the Stable Diffusion recipe) trained on captioned faces."""

__version__ = "0.1.0"
__all__ = ["SamplingSettings", "Text2ImagePipeline", "load_pipeline"]


def __getattr__(name: str):
    """`t2i.load_pipeline`, `t2i.Text2ImagePipeline` and `t2i.SamplingSettings`, imported on first use (so
    `t2i --help` stays fast)."""
    if name == "load_pipeline":
        from t2i.families import load_pipeline

        return load_pipeline
    if name in __all__:
        from t2i import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 't2i' has no attribute {name!r}")
