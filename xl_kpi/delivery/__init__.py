"""Getting each card to its owner only: bundles, encryption, PDF, the isolation check and e-mail."""
