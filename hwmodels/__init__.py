"""hwmodels: the science of hwscore, usable as a library with no server.

Import what you need from the submodules. ``profile``, ``specs``, ``report``,
``progress`` and ``datasets.catalog`` import no torch, so the API process can use them
for validation; everything else needs torch.
"""
