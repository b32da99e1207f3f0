import { moduleTwinScenarios } from './scenarios/modules.ts';

moduleTwinScenarios('MqttWs');
