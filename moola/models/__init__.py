"""Models: plain nn.Modules (lstm, autoencoder), MiniRocket, and the encoder load proof."""
