"""Files on disk: the one atomic writer, the record store and its index, the batch journal, and which records a command acts on."""
