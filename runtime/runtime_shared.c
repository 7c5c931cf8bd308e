/* libkiln.so: everything comes from the kiln_runtime archive. */
