"""Model back ends behind small structural protocols (see `voxcall.providers.base`)."""
