"""Chinese text primitives that every floor may use (the index's keyword side as much
as the pipeline): traditional/simplified script conversion."""
