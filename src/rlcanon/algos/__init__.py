"""Deep RL algorithms, one file each: config, specific nets, loss, train loop."""
