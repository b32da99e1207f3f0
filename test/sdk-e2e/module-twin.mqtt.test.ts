import { moduleTwinScenarios } from './scenarios/modules.ts';

moduleTwinScenarios('Mqtt');
