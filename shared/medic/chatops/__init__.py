"""ChatOps in Slack: Block Kit cards (`blocks`), the metric graph in a card's thread (`graph`), the transports
(`transport`) and the verified request models (`requests`). The Slack use case itself is medic.usecases.interactions."""
