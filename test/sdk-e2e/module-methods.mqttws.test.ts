import { moduleMethodScenarios } from './scenarios/modules.ts';

moduleMethodScenarios('MqttWs');
