"""What the server does once per process before the first page: measured cold-start savings.

torch wraps four ``torch.optim.Optimizer`` methods (``add_param_group``, ``zero_grad``,
``state_dict``, ``load_state_dict``) in ``torch._compile._disable_dynamo``: on the first call the
wrapper imports ``torch._dynamo`` (with inductor: 1.8 s on an idle core, 3.9 s on this loaded
2-core box, measured with ``python -X importtime``) only to mark the method "never compile". Every
genlib model builds its Adam optimisers in ``__init__``, so the first pretrained checkpoint a page
loaded paid that import. The dashboard never calls ``torch.compile``; ``skip_dynamo_marking`` stores
the method itself as the wrapper's cached "disabled" version, the value the wrapper would cache,
minus the import. Set ``GENLIB_DASHBOARD_KEEP_DYNAMO=1`` to leave torch as it is.
"""
from __future__ import annotations

import os


def skip_dynamo_marking() -> list[str]:
    """Pre-fill the cache of torch's lazy ``_disable_dynamo`` wrappers on the Optimizer methods
    (only while ``torch._dynamo`` is not loaded: once it is, the wrappers work as torch meant).
    Returns the methods changed."""
    import sys

    import torch

    if os.environ.get("GENLIB_DASHBOARD_KEEP_DYNAMO") or "torch._dynamo" in sys.modules:
        return []
    try:
        from torch._compile import _disable_dynamo
    except ImportError:                     # another torch: nothing to do
        return []
    code = _disable_dynamo(lambda: None).__code__      # the wrapper's code object: how to recognise one
    done = []
    for name, f in vars(torch.optim.Optimizer).items():
        inner = getattr(f, "__wrapped__", None)
        if getattr(f, "__code__", None) is code and inner is not None and not hasattr(inner, "__dynamo_disable"):
            inner.__dynamo_disable = inner
            done.append(f"Optimizer.{name}")
    return done
