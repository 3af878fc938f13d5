"""hwmodels: the science of hwscore, usable as a library with no server.

Import what you need from the submodules. ``profile``, ``specs``, ``report``,
``progress`` and ``datasets.catalog`` import no torch, so the API process can use them
for validation; everything else needs torch.
"""

ENGINE_VERSION = "8"
"""Bumped by every change that can alter the numbers a study produces. Finished work is
reused only when it was computed by the same engine version (``app.services.jobs``)."""
