"""The HJ 212 codes of the factors in the rule scenarios."""

SO2, O2, FLOW_GAS = "a21026", "a19001", "a00000"
COD, FLOW_WATER = "w01018", "w00000"
