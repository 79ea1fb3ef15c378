"""One module per ``lagc-hand`` subcommand (see ``lagc_hand.cli``)."""
