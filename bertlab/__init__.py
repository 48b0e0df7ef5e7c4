"""bertlab: build and train every model on the road to BERT.

One module per idea (the map is in ARCHITECTURE.md): ``data`` (datasets, verified), ``train``
(the one training loop), ``checkpoint`` (files and the cache), and the models the chapters
build. The helpers most chapters need are exported here.
"""

from bertlab.show import quote, show_source
from bertlab.train import pick_device, seed_everything

__version__ = "0.1.0"
__all__ = ["quote", "pick_device", "seed_everything", "show_source", "__version__"]
