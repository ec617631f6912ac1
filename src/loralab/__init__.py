"""loralab: a laboratory for recycling LoRAs."""

__version__ = "0.1.0"
