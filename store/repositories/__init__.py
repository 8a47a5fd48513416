"""The repositories of the unit of work (store.uow), one module per area."""
