import { d2cScenarios } from './scenarios/d2c.ts';

d2cScenarios('Mqtt');
