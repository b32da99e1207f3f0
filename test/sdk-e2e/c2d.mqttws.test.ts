import { c2dScenarios } from './scenarios/c2d.ts';

c2dScenarios('MqttWs');
