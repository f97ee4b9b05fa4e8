"""What people read: one record, many records, charts, badges, model cards and the static verification bundle. Every figure goes through :mod:`mrv_ml.units`."""
