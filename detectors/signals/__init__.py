"""Signal detectors: sensor levels and shifts, faults, prices, counts, rates, forecasts,
stations and entities, with their calibration."""
